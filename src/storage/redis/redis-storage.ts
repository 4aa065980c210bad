import type { StorageFactory } from '../../engine/storage-port.js';
import type { RedisLocation } from './redis-location.js';

export interface RedisStorageOptions extends RedisLocation {
  fsync: boolean;
  kind: string | undefined;
}

/** Placeholder until the Redis storage lands (issue 12). */
export function redisStorage(_options: RedisStorageOptions): StorageFactory {
  throw new TypeError('the Redis storage is not built yet');
}
