// Creates and closes the Prisma client. Prisma 7's client is Rust-free: queries go
// through node-postgres via the pg driver adapter.
import { PrismaPg } from '@prisma/adapter-pg';
import type { Config } from '../shared/config.js';
import { PrismaClient } from '../generated/prisma/client.js';

export type Db = PrismaClient;
export { Prisma } from '../generated/prisma/client.js';

export function createDb(
  cfg: Pick<Config, 'DATABASE_URL' | 'DATABASE_POOL_SIZE'> &
    Partial<Pick<Config, 'DATABASE_CONNECT_TIMEOUT_MS'>>,
): Db {
  const adapter = new PrismaPg({
    connectionString: cfg.DATABASE_URL,
    max: cfg.DATABASE_POOL_SIZE,
    // A hung or unreachable server must fail a request (503) instead of holding it forever.
    connectionTimeoutMillis: cfg.DATABASE_CONNECT_TIMEOUT_MS ?? 2000,
  });
  return new PrismaClient({ adapter });
}

export async function closeDb(db: Db): Promise<void> {
  await db.$disconnect();
}
