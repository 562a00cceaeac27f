// Builds the settings object the server takes (docs/PROTOCOL.md, "Initialization options and
// settings") from the `cutlens.*` configuration. Only values the user actually set are sent:
// a key left out lets the project config (cutlens.toml / [tool.cutlens]) decide.
import type { ServerSettings } from './protocol';

/** Returns a setting's value when the user set it anywhere (user, workspace, folder), else undefined. */
export type SettingLookup = (key: string) => unknown;

const CHECK_ON = new Set(['save', 'change', 'off']);

function nonEmptyString(v: unknown): string | undefined {
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

export function buildServerSettings(lookup: SettingLookup): ServerSettings {
  const out: ServerSettings = {};
  const nvcc = nonEmptyString(lookup('nvcc'));
  if (nvcc) out.nvcc = nvcc;
  const arch = nonEmptyString(lookup('arch'));
  if (arch) out.arch = arch;
  const checkOn = lookup('checkOn');
  if (typeof checkOn === 'string' && CHECK_ON.has(checkOn)) out.checkOn = checkOn as ServerSettings['checkOn'];
  const jobs = lookup('jobs');
  if (typeof jobs === 'number' && Number.isInteger(jobs) && jobs > 0) out.jobs = jobs;
  const device = lookup('benchmark.device');
  if (typeof device === 'number' && Number.isInteger(device) && device >= 0) out.benchmark = { device };
  else if (nonEmptyString(device)) out.benchmark = { device: nonEmptyString(device) };
  const globs = lookup('templateGlobs');
  if (Array.isArray(globs)) {
    const clean = globs.filter((g): g is string => typeof g === 'string' && g.trim() !== '');
    if (clean.length) out.templateGlobs = clean;
  }
  return out;
}

/** Settings whose change needs a new server process rather than didChangeConfiguration. */
export const RESTART_SETTINGS = ['cutlens.python'] as const;

/**
 * Settings that name programs the extension or the server runs; in an untrusted workspace only
 * their user-level values count (also declared as `restrictedConfigurations` in package.json).
 */
export const RESTRICTED_SETTINGS = ['python', 'nvcc'] as const;

/** The values of one setting by scope (what `WorkspaceConfiguration.inspect` returns). */
export interface SettingScopes {
  globalValue?: unknown;
  workspaceValue?: unknown;
  workspaceFolderValue?: unknown;
}

/** A setting's effective value; a restricted one ignores workspace values when untrusted. */
export function settingValue(key: string, scopes: SettingScopes | undefined, trusted: boolean): unknown {
  if (!scopes) return undefined;
  if (!trusted && (RESTRICTED_SETTINGS as readonly string[]).includes(key)) return scopes.globalValue;
  return scopes.workspaceFolderValue ?? scopes.workspaceValue ?? scopes.globalValue;
}

/** The settings with the workspace's trust, which the server needs on every update. */
export function withTrust(settings: ServerSettings, trusted: boolean): ServerSettings {
  return { ...settings, trusted };
}
