export declare const repoRoot: string;
export declare function cacheDir(root?: string): string;
export declare function isRunning(pid: number): boolean;
export declare function writeFileAtomically(path: string, data: string | Uint8Array): void;
export declare function makeFolderAtomically(dir: string, fill: (partial: string) => void): void;
export declare function removeStalePartialsIn(folder: string, isTarget: (target: string) => boolean): void;
