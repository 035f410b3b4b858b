// skydm sandbox: an in-memory PLC directory + a dev-mode atproto PDS, both on
// 127.0.0.1, for local development and tests. Nothing here talks to anything
// but loopback.
//
// Run with Node >= 22 and the preloads (internal/sandbox does this):
//   node --require ./loopback-only.cjs --require ./hosts-override.cjs start.mjs
//
// Environment:
//   PLC_PORT, PDS_PORT        ports on 127.0.0.1 (default 2582, 2583)
//   SANDBOX_DATA_DIR          the sandbox's directory (default: a fresh temp
//                             dir); the PDS keeps its data in <dir>/pds. The
//                             whole directory is removed on exit either way,
//                             so files the parent put there (the test CA) go
//                             too, even when the parent died.
//   SANDBOX_ACCESS_TOKEN_TTL  OAuth access token lifetime: "2s", "1500ms",
//                             "5m" or a bare number of seconds (default: the
//                             provider's 60 minutes). Must exceed 250 ms.
//   SANDBOX_STOP_ON_STDIN_EOF "1": stop when stdin closes (the parent died)
//   PDS_EXTRA_ENV             JSON object merged into the PDS env config
//   HOSTS_OVERRIDE, NODE_EXTRA_CA_CERTS  see hosts-override.cjs
//
// stdout carries exactly one JSON line: either
//   {"ready":true,"plcUrl":…,"pdsUrl":…,"pid":…,"startupMs":…,"rssMB":…,"accessTokenTtlMs":…}
// or, when it cannot start,
//   {"ready":false,"error":"…","code":"EADDRINUSE","port":2583}
// Logs and stack traces go to stderr. SIGTERM/SIGINT stop both servers and
// remove the data directory.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { createRequire } from 'node:module'
import { Secp256k1Keypair } from '@atproto/crypto'
import { PDS, envToCfg, envToSecrets } from '@atproto/pds'

const require = createRequire(import.meta.url)
const plc = require('@did-plc/server') // CommonJS package

const t0 = performance.now()
const PLC_PORT = Number(process.env.PLC_PORT || 2582)
const PDS_PORT = Number(process.env.PDS_PORT || 2583)
const dataDir = process.env.SANDBOX_DATA_DIR || fs.mkdtempSync(path.join(os.tmpdir(), 'skydm-pds-'))
fs.mkdirSync(path.join(dataDir, 'pds'), { recursive: true })

let plcServer
let pds
let stopping = false

const emit = (obj) => process.stdout.write(JSON.stringify(obj) + '\n')

async function stop(code = 0) {
  if (stopping) return
  stopping = true
  // After a failed start the half-built servers may complain about not
  // running; only report teardown errors of a sandbox that was up.
  const report = (what) => (err) => code === 0 && console.error(`sandbox: ${what} destroy:`, err)
  await pds?.destroy().catch(report('pds'))
  await plcServer?.destroy().catch(report('plc'))
  fs.rmSync(dataDir, { recursive: true, force: true })
  process.exit(code)
}

async function fail(err, what, port) {
  const msg = err?.code === 'EADDRINUSE'
    ? `${what} port ${port} on 127.0.0.1 is already in use`
    : `${what} failed to start: ${err?.message || err}`
  console.error('sandbox:', msg, err?.stack || '')
  emit({ ready: false, error: msg, code: err?.code || 'START_FAILED', port })
  await stop(1)
}

// parseDuration("2s") === 2000; a bare number is seconds.
function parseDuration(s) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$/.exec(s)
  if (!m) throw new Error(`SANDBOX_ACCESS_TOKEN_TTL: cannot parse ${JSON.stringify(s)} (use e.g. 2s, 1500ms, 5m)`)
  const unit = { ms: 1, s: 1e3, m: 60e3, h: 3600e3 }[m[2] || 's']
  return Math.round(Number(m[1]) * unit)
}

process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))
if (process.env.SANDBOX_STOP_ON_STDIN_EOF === '1') {
  process.stdin.on('end', () => stop(0))
  process.stdin.on('close', () => stop(0))
  process.stdin.on('error', () => stop(0))
  process.stdin.resume()
}

let tokenTtlMs
try {
  if (process.env.SANDBOX_ACCESS_TOKEN_TTL) {
    tokenTtlMs = parseDuration(process.env.SANDBOX_ACCESS_TOKEN_TTL)
    if (tokenTtlMs <= 250) throw new Error('SANDBOX_ACCESS_TOKEN_TTL must be more than 250ms')
  }
} catch (err) {
  await fail(err, 'configuration', 0)
}

// 1. PLC directory with an in-memory database (what @atproto/dev-env's TestPlc does)
try {
  plcServer = plc.PlcServer.create({ db: plc.Database.mock(), port: PLC_PORT })
  await plcServer.start()
} catch (err) {
  await fail(err, 'PLC', PLC_PORT)
}
const plcUrl = `http://localhost:${PLC_PORT}`

// 2. PDS in dev mode: hostname localhost gives publicUrl http://localhost:PORT,
// service DID did:web:localhost and handles under .test.
try {
  const rotationKey = await Secp256k1Keypair.create({ exportable: true })
  const env = {
    devMode: true,
    port: PDS_PORT,
    hostname: 'localhost',
    dataDirectory: path.join(dataDir, 'pds'),
    blobstoreDiskLocation: path.join(dataDir, 'pds', 'blobs'),
    didPlcUrl: plcUrl,
    inviteRequired: false,
    jwtSecret: 'sandbox-jwt-secret',
    adminPassword: 'sandbox-admin-pass',
    plcRotationKeyK256PrivateKeyHex: Buffer.from(await rotationKey.export()).toString('hex'),
    // No app view or moderation service: app.bsky.* calls without an
    // atproto-proxy header answer 400 "No service configured".
    ...(process.env.PDS_EXTRA_ENV ? JSON.parse(process.env.PDS_EXTRA_ENV) : {}),
  }
  pds = await PDS.create(envToCfg(env), envToSecrets(env))
  if (tokenTtlMs) {
    // @atproto/pds 0.5.35 does not pass `tokenMaxAge` to its OAuthProvider
    // (it always uses TOKEN_MAX_AGE, 60 min), so set it on the provider's
    // TokenManager instance; createTokenExpiry() reads it for every new or
    // refreshed token. Checked against @atproto/oauth-provider 0.22.9.
    const tm = pds.ctx.oauthProvider?.tokenManager
    if (!tm || typeof tm.tokenMaxAge !== 'number') {
      throw new Error('SANDBOX_ACCESS_TOKEN_TTL: this @atproto/oauth-provider has no tokenManager.tokenMaxAge to set')
    }
    tm.tokenMaxAge = tokenTtlMs
  }
  await pds.start()
} catch (err) {
  await fail(err, 'PDS', PDS_PORT)
}

emit({
  ready: true,
  plcUrl,
  pdsUrl: `http://localhost:${PDS_PORT}`,
  pid: process.pid,
  dataDir,
  startupMs: Math.round(performance.now() - t0),
  rssMB: Math.round(process.memoryUsage().rss / 1e6),
  accessTokenTtlMs: pds.ctx.oauthProvider?.tokenManager?.tokenMaxAge ?? null,
})
