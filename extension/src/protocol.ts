// The cutlens server's protocol surface beyond standard LSP (docs/PROTOCOL.md), as TypeScript
// types. No `vscode` import: the pure modules and their unit tests use these too.

/** Command ids the server executes (`workspace/executeCommand`); its code lenses carry them. */
export const ServerCommand = {
  check: 'cutlens.check',
  checkWorkspace: 'cutlens.checkWorkspace',
  benchmark: 'cutlens.benchmark',
  showRendered: 'cutlens.showRendered',
  selectSample: 'cutlens.selectSample',
  selectVariant: 'cutlens.selectVariant',
  /** The latest sweep (a grid's summary lens carries it): the client shows its results view. */
  results: 'cutlens.results',
  /** Show a file at a line (a quick fix: the header an nvcc error came from). */
  openLocation: 'cutlens.openLocation',
  /** Nsight Compute on one variant: `[uri, variant?, sample?, baseline?]` → {@link ProfileResult}. */
  profile: 'cutlens.profile',
} as const;

export const RenderedRequest = 'cutlens/rendered';
export const SelectionRequest = 'cutlens/selection';
export const ResultsRequest = 'cutlens/results';
export const StatusNotification = 'cutlens/status';

export interface RenderedParams {
  uri: string;
  sample?: string;
  variant?: string | number;
}

/** One rendered line's origin: a template line (0-based) in `uri`. */
export interface LineOrigin {
  uri: string;
  line: number;
}

export interface RenderedResult {
  text: string;
  sample: string;
  variant: string;
  kernelName?: string;
  /** For each rendered line (0-based index), the template line it came from, or null. */
  lines: (LineOrigin | null)[];
}

export interface VariantInfo {
  index: number;
  name: string;
  values?: Record<string, unknown>;
}

export interface SelectionResult {
  samples: string[];
  variants: VariantInfo[];
  active: { sample?: string | null; variant?: string | null };
}

export interface ResultRow {
  sample: string;
  variant: number;
  variantName: string;
  ms: number | null;
  msMin?: number | null;
  spreadPct?: number | null;
  tflops?: number | null;
  gbps?: number | null;
  workspaceBytes?: number | null;
  regs?: number | null;
  smemBytes?: number | null;
  spills?: number | null;
  verified?: boolean | null;
  error?: string | null;
  /** Share of the nearer measured ceiling (percent) and which one it is. */
  solPct?: number | null;
  bound?: 'compute' | 'memory' | null;
  /** False: the spread stayed above the threshold (never the best row). */
  stable?: boolean | null;
  gpuState?: GpuState | null;
  /** Set on a finalist: its figures come from the interleaved rounds after the sweep. */
  finalist?: Finalist | null;
  best?: boolean;
  /** The row's latest Nsight Compute profile. */
  profile?: ProfileRow | null;
}

export interface ProfileRow {
  smPct?: number | null;
  memoryPct?: number | null;
  occupancyPct?: number | null;
  registers?: number | null;
  l2HitPct?: number | null;
  dramBytes?: number | null;
  topStalls?: { reason: string; cycles_per_issue: number }[];
  report?: string | null;
}

/** One variant's profile (`cutlens profile --format json`'s `profile`). */
export interface Profile {
  template: string;
  sample: string;
  variant: string;
  report: string;
  open: string;
  summary: {
    sm_pct?: number | null;
    memory_pct?: number | null;
    achieved_occupancy_pct?: number | null;
    registers?: number | null;
    top_stalls?: { reason: string; cycles_per_issue: number }[];
  };
}

/** What `cutlens.profile` answers: the profile, a baseline's with the differences, or an error. */
export interface ProfileResult {
  error?: string;
  profile?: Profile;
  baseline?: Profile;
  comparison?: { difference: Record<string, { value: number; baseline: number; delta: number }> };
  /** The command that opens the report(s) in the Nsight Compute UI. */
  open?: string;
}

export interface GpuState {
  sm_clock_mhz?: number | null;
  temp_c?: number | null;
  power_w?: number | null;
  throttle?: string[] | null;
}

export interface Finalist {
  rounds?: number;
  ms_interval?: [number, number] | null;
  vs_reference?: number | null;
  interval?: [number, number] | null;
  tie?: boolean | null;
}

export interface Baseline {
  ms?: number | null;
  tflops?: number | null;
  gbps?: number | null;
  solPct?: number | null;
  bound?: 'compute' | 'memory' | null;
}

/** A sample the template took from a samples file (`cutlens capture`). */
export interface CapturedInfo {
  weight: number;
  op?: string;
  count?: number;
  timeMs?: number | null;
  modules?: string[];
}

export interface ResultsResult {
  gpu?: string | null;
  rows: ResultRow[];
  baseline?: Record<string, Baseline>;
  /** Captured samples by name, and what their weights are shares of (`time` or `count`). */
  captured?: Record<string, CapturedInfo>;
  capturedWeightBy?: string;
}

export type ServerState = 'starting' | 'ready' | 'compiling' | 'benchmarking' | 'error';

export interface StatusParams {
  state: ServerState;
  pending?: number;
  message?: string;
}

/** `selectSample` / `selectVariant` without a name answer the choices for a picker. */
export interface ChoicesResult {
  choices: (string | VariantInfo)[];
}

/** Settings sent as `initializationOptions` and in `workspace/didChangeConfiguration`. */
export interface ServerSettings {
  nvcc?: string;
  arch?: string;
  checkOn?: 'save' | 'change' | 'off';
  jobs?: number;
  benchmark?: { device?: string | number };
  templateGlobs?: string[];
  /** Workspace trust (VS Code's `workspace.isTrusted`): false runs no workspace code. */
  trusted?: boolean;
}
