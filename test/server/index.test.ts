import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import * as server from '../../src/server/index.js'
import { createLogger, loadConfig, startServer } from '../../src/server/index.js'

// tessera-auth/server, used as its TSDoc example uses it.

describe('tessera-auth/server', () => {
  it('exports the small surface it documents, and nothing of the internals', () => {
    // openBackends and loadKeys: what the CLI opens exactly as the server does (issue 11 item 6).
    // createTesseraAPI: the same API mounted inside an app (issue 19).
    expect(Object.keys(server).sort()).toEqual([
      'createLogger',
      'createTesseraAPI',
      'loadConfig',
      'loadKeys',
      'openBackends',
      'startServer',
      'waitForStopSignal',
    ])
  })

  it('starts the server from a configuration, with routes of its own, and stops it', async () => {
    const cwd = mkdtempSync(join(tmpdir(), 'tessera-embed-'))
    try {
      const config = loadConfig(
        { NODE_ENV: 'test', PORT: '0', HOST: '127.0.0.1', TESSERA_MAILER: 'console' },
        { cwd, envFiles: false },
      )
      const running = await startServer(config, {
        logger: createLogger('silent'),
        routes: [(app) => app.get('/hello', (c) => c.text('hello'))],
      })
      try {
        const base = `http://127.0.0.1:${running.port}`
        expect(await (await fetch(`${base}/hello`)).text()).toBe('hello')
        expect((await fetch(`${base}/healthz`)).status).toBe(200)
        const session = await fetch(`${base}/auth/session`)
        expect(session.status).toBe(401)
        await session.body?.cancel()
      } finally {
        await running.close()
      }
      expect(running.server.listening).toBe(false)
    } finally {
      rmSync(cwd, { recursive: true, force: true })
    }
  })
})
