export declare const repoRoot: string;
export declare const SANDBOX_ENTRIES: readonly string[];
export declare const UNBUNDLED_PACKAGES: readonly string[];
export declare function builtEntry(dir: string, entry: string): string;
export declare function buildSandbox(entries?: readonly string[], root?: string): Promise<string>;
