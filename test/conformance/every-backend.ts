import { directoryBackend, type Backend } from './backends.js';
import { redisBackend } from './redis-backend.js';

/** Every backend the suites run over: a store directory, and a store on Redis (a real redis-server, test/helpers/redis-server.ts). */
export const backends: readonly Backend[] = [directoryBackend, redisBackend()];
