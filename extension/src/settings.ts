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
