import { randomBytes } from 'node:crypto'
import { describe } from 'vitest'

/**
 * The URLs of the real servers store suites run against, from the environment `.ci/run` sets.
 * When a URL is missing the suite is skipped, unless `TESSERA_REQUIRE_SERVICES=1`, where a suite
 * that would skip fails instead (CI must never pass on a skipped store suite).
 */
export const REDIS_URL = process.env.TESSERA_TEST_REDIS_URL
export const PG_URL = process.env.TESSERA_TEST_PG_URL
const REQUIRED = process.env.TESSERA_REQUIRE_SERVICES === '1'

/**
 * `describe` when the service URL is set; otherwise a skipped suite, or, under
 * `TESSERA_REQUIRE_SERVICES=1`, a suite that fails at once.
 */
export function describeWithService(
  service: 'redis' | 'postgres',
  name: string,
  body: (url: string) => void,
): void {
  const url = service === 'redis' ? REDIS_URL : PG_URL
  if (url !== undefined && url !== '') {
    describe(name, () => body(url))
    return
  }
  if (REQUIRED) {
    describe(name, () => {
      throw new Error(
        `${service} is required (TESSERA_REQUIRE_SERVICES=1) but TESSERA_TEST_${service === 'redis' ? 'REDIS' : 'PG'}_URL is not set`,
      )
    })
    return
  }
  describe.skip(`${name} (set TESSERA_TEST_${service === 'redis' ? 'REDIS' : 'PG'}_URL to run)`, () =>
    body(''))
}

/**
 * A name unique to one test, for Redis key prefixes and PostgreSQL schemas: several suites and
 * several engineers share the same servers, so nothing uses a fixed name.
 */
export function uniqueName(prefix: string): string {
  return `${prefix}_${randomBytes(6).toString('hex')}`
}

/**
 * `describe` for a suite that needs both PostgreSQL and Redis (the server's shared-backend
 * setup), skipped or failing like {@link describeWithService} when either URL is missing.
 */
export function describeWithPostgresAndRedis(
  name: string,
  body: (urls: { pgUrl: string; redisUrl: string }) => void,
): void {
  describeWithService('postgres', name, (pgUrl) => {
    if (REDIS_URL === undefined || REDIS_URL === '') {
      if (REQUIRED) {
        throw new Error(
          'redis is required (TESSERA_REQUIRE_SERVICES=1) but TESSERA_TEST_REDIS_URL is not set',
        )
      }
      describe.skip('(set TESSERA_TEST_REDIS_URL to run)', () => undefined)
      return
    }
    body({ pgUrl, redisUrl: REDIS_URL })
  })
}
