/** Why the database could not be used. Each message says what to do about it. */
export type StorageErrorCode =
  | 'invalid_database_url'
  | 'database_unreachable'
  | 'schema_too_new'
  | 'migration_failed'
  | 'data_dir_unusable';

export class StorageError extends Error {
  constructor(
    readonly code: StorageErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'StorageError';
  }
}
