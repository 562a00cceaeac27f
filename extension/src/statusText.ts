// What the status-bar item says for a `cutlens/status` notification or a client state.
import type { StatusParams } from './protocol';

export type ClientPhase = 'starting' | 'stopped' | 'failed';

export interface StatusView {
  text: string;
  tooltip: string;
  severity: 'normal' | 'warning' | 'error';
}

const CLICK = 'Click to open the cutlens server log.';

export function statusFromServer(s: StatusParams): StatusView {
  const pending = typeof s.pending === 'number' && s.pending > 0 ? s.pending : 0;
  const detail = s.message ? `${s.message}\n` : '';
  switch (s.state) {
    case 'starting':
      return { text: '$(loading~spin) cutlens: starting', tooltip: `${detail}${CLICK}`, severity: 'normal' };
    case 'ready':
      return { text: '$(check) cutlens: ready', tooltip: `${detail || 'The cutlens server is ready.\n'}${CLICK}`, severity: 'normal' };
    case 'compiling':
      return {
        text: `$(sync~spin) cutlens: compiling${pending ? ` ${pending}` : ''}`,
        tooltip: `${detail}${CLICK}`,
        severity: 'normal',
      };
    case 'benchmarking':
      return {
        text: `$(pulse) cutlens: benchmarking${pending ? ` ${pending}` : ''}`,
        tooltip: `${detail}${CLICK}`,
        severity: 'normal',
      };
    case 'error':
      return { text: '$(error) cutlens: error', tooltip: `${detail}${CLICK}`, severity: 'error' };
    default:
      return { text: `$(question) cutlens: ${String((s as { state: unknown }).state)}`, tooltip: `${detail}${CLICK}`, severity: 'warning' };
  }
}

export function statusFromClient(phase: ClientPhase, message?: string): StatusView {
  const detail = message ? `${message}\n` : '';
  switch (phase) {
    case 'starting':
      return statusFromServer({ state: 'starting', message });
    case 'stopped':
      return { text: '$(circle-slash) cutlens: stopped', tooltip: `${detail}${CLICK}`, severity: 'warning' };
    case 'failed':
      return { text: '$(error) cutlens: error', tooltip: `${detail}${CLICK}`, severity: 'error' };
  }
}
