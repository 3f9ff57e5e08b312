// SKUs as the operator and the public see them: create (PostgreSQL first, then Redis),
// restock, pause and resume, and the public stock view.
import { InventoryPart, type InventoryContext } from './types.js';
import { Prisma } from '../clients/db.js';
import { AppError } from '../shared/errors.js';
import type { Rebuilder } from './rebuild.js';
import { ScriptCode, scriptError, skuUnavailable } from './script-codes.js';
import { MAX_SUPPLY, iso, type NewSku, type SkuView } from './types.js';
import {
  admissionColumns,
  admissionFromRow,
  admissionHashFields,
  admissionSettings,
  gatePasses,
  sameAdmission,
  type AdmissionSettings,
} from './admission-fields.js';

export class Skus extends InventoryPart {
  constructor(
    ctx: InventoryContext,
    private readonly rebuild: Rebuilder,
  ) {
    super(ctx);
  }

  async getSku(skuId: string): Promise<SkuView> {
    const k = this.keys.forSku(skuId);
    const [available, startsAt, endsAt, paused, gate] = await this.redis.hmget(
      k.sku,
      'available',
      'startsAt',
      'endsAt',
      'paused',
      'gate',
    );
    if (available === null || available === undefined) return this.rebuild.stateMissing(skuId);
    const now = Date.now();
    const start = Number(startsAt ?? 0);
    const end = Number(endsAt ?? 0);
    const units = Number(available);
    const status: SkuView['status'] =
      paused === '1'
        ? 'paused'
        : start > 0 && now < start
          ? 'scheduled'
          : end > 0 && now >= end
            ? 'ended'
            : units === 0
              ? 'sold_out'
              : 'active';
    return {
      sku: skuId,
      available: units,
      status,
      startsAt: start ? iso(start) : null,
      endsAt: end ? iso(end) : null,
      ...gatePasses(gate),
    };
  }

  /** Admin: a SKU's admission settings as PostgreSQL, their durable record, holds them. */
  async getAdmission(skuId: string): Promise<AdmissionSettings> {
    const row = await this.db.sku.findUnique({ where: { id: skuId } });
    if (!row) throw new AppError('SKU_NOT_FOUND');
    return admissionFromRow(row);
  }

  /**
   * Admin: PostgreSQL first (the durable record), then the Redis state from it. A creation
   * that answered 503 after PostgreSQL took it may be sent again: the same definition is
   * that creation replayed (its Redis state rebuilt if missing); another one is SKU_EXISTS.
   */
  async createSku(input: NewSku) {
    this.keys.forSku(input.sku);
    const ttl = input.reservationTtlSeconds ?? this.opts.defaultReservationTtlSeconds;
    if (ttl > this.opts.idempotencyTtlSeconds)
      throw new AppError(
        'VALIDATION_FAILED',
        `reservationTtlSeconds must not exceed ${this.opts.idempotencyTtlSeconds} (IDEMPOTENCY_TTL_SECONDS): a reservation may not outlive the memory of its Idempotency-Key.`,
      );
    const admission = admissionSettings(input.admission ?? {});
    try {
      const row = await this.db.sku.create({
        data: {
          id: input.sku,
          name: input.name,
          totalSupplied: input.stock,
          available: input.stock,
          perUserLimit: input.perUserLimit,
          startsAt: input.startsAt ?? null,
          endsAt: input.endsAt ?? null,
          reservationTtlSeconds: ttl,
          ...admissionColumns(admission),
        },
      });
      await this.rebuild.skuCreated(input.sku);
      await this.rebuild.loadFromDb(input.sku);
      return { row, replayed: false };
    } catch (err) {
      if (!(err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2002')) throw err;
    }
    const [row, redisSupplied] = await Promise.all([
      this.db.sku.findUnique({ where: { id: input.sku } }),
      this.redis.hget(this.keys.forSku(input.sku).sku, 'supplied'),
    ]);
    // Redis knows of a restock before PostgreSQL does: its supply decides when it has one.
    const supplied = redisSupplied !== null ? Number(redisSupplied) : row?.totalSupplied;
    const same =
      row !== null &&
      row.name === input.name &&
      supplied === input.stock &&
      row.perUserLimit === input.perUserLimit &&
      row.reservationTtlSeconds === ttl &&
      (row.startsAt?.getTime() ?? null) === (input.startsAt?.getTime() ?? null) &&
      (row.endsAt?.getTime() ?? null) === (input.endsAt?.getTime() ?? null) &&
      sameAdmission(admissionFromRow(row), admission);
    if (!same) throw new AppError('SKU_EXISTS');
    await this.rebuild.skuCreated(input.sku);
    // Never a direct load here: the SKU may have sold since, so a missing state goes
    // through the rebuild (under its lock, once the pipeline has delivered its events).
    if (redisSupplied === null) await this.rebuild.onStateMissing(input.sku);
    return { row, replayed: true };
  }

  async restock(skuId: string, quantity: number, reason: string) {
    const k = this.keys.forSku(skuId);
    const reply = await this.redis.fsRestock(k.sku, k.events, skuId, quantity, reason, MAX_SUPPLY);
    const code = Number(reply[0]);
    if (code === ScriptCode.Done) {
      this.soldOut.clear(skuId);
      return {
        sku: skuId,
        available: Number(reply[1]),
        totalSupplied: Number(reply[2]),
        sequence: Number(reply[3]),
      };
    }
    if (code === ScriptCode.SkuStateMissing) return this.rebuild.stateMissing(skuId);
    throw scriptError(code, reply);
  }

  /**
   * Admin: replaces a SKU's admission settings. PostgreSQL first (the durable record, with
   * a new version), then the SKU's Redis hash, which every API instance's scripts read, so
   * the change holds at once everywhere. Redis takes a version only when it is newer than
   * the one it holds: two changes racing end as the later one in both stores. With the
   * Redis state missing, the rebuild (started here) loads the new settings; the caller
   * hears 503 and may send the same settings again.
   */
  async setAdmission(skuId: string, settings: AdmissionSettings): Promise<AdmissionSettings> {
    const k = this.keys.forSku(skuId);
    let row;
    try {
      row = await this.db.sku.update({
        where: { id: skuId },
        data: { ...admissionColumns(settings), admissionVersion: { increment: 1 } },
      });
    } catch (err) {
      if (err instanceof Prisma.PrismaClientKnownRequestError && err.code === 'P2025')
        throw new AppError('SKU_NOT_FOUND');
      throw err;
    }
    const reply = await this.redis.fsSetAdmission(
      k.sku,
      row.admissionVersion,
      ...admissionHashFields(settings),
    );
    if (Number(reply[0]) === ScriptCode.SkuStateMissing) {
      await this.rebuild.onStateMissing(skuId);
      throw skuUnavailable();
    }
    return admissionFromRow(row);
  }

  /** Pauses or resumes a SKU's sales; answers whether the flag changed. */
  async setPaused(skuId: string, paused: boolean): Promise<boolean> {
    const k = this.keys.forSku(skuId);
    const reply = await this.redis.fsSetPaused(k.sku, k.events, skuId, paused ? '1' : '0');
    const code = Number(reply[0]);
    if (code === ScriptCode.SkuStateMissing) return this.rebuild.stateMissing(skuId);
    if (code < 0) throw scriptError(code, reply);
    if (!paused) this.soldOut.clear(skuId);
    return code === 1;
  }
}
