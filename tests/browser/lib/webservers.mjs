// Real web servers in front of the sidecar, run as child processes of the test with a
// generated minimal main configuration that includes the SHIPPED recipes:
//   startApache()  apache2 (prefork + mod_php, as a mod_php site runs it) with
//                  deploy/apache/comet-proxy.conf included unchanged, COMET_SIDECAR
//                  defined before it
//   startNginx()   nginx with deploy/nginx/comet-http.conf in http { } (its upstream
//                  address pointed at the test's sidecar, nothing else changed) and
//                  deploy/nginx/comet-locations.conf in server { } unchanged
//   startPhpServer()  `php -S` (the PHP part behind nginx: there is no php-fpm here)
// Each listens on a free loopback port, runs in a temporary directory and in its own
// process group (killed with the test process), and is stopped by stop().
//
// Binaries: COMET_APACHE_BIN (apache2), COMET_APACHE_MODULES (/usr/lib/apache2/modules),
// COMET_APACHE_PHP_MODULE (libphp*.so there), COMET_NGINX_BIN (nginx), COMET_PHP_BIN (php).

import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { canConnect, findBinary, killGroup } from '../../integration/lib/processes.mjs';
import { freePort, repoRoot, waitUntil, withTimeout } from './harness.mjs';

export const APACHE_RECIPE = path.join(repoRoot, 'deploy/apache/comet-proxy.conf');
export const NGINX_HTTP_RECIPE = path.join(repoRoot, 'deploy/nginx/comet-http.conf');
export const NGINX_LOCATIONS_RECIPE = path.join(repoRoot, 'deploy/nginx/comet-locations.conf');

const isRoot = process.getuid?.() === 0;

export const APACHE_BIN = findBinary('COMET_APACHE_BIN', 'apache2', ['/usr/sbin/apache2', '/usr/sbin/httpd']);
export const APACHE_MODULES = process.env.COMET_APACHE_MODULES || '/usr/lib/apache2/modules';
export const NGINX_BIN = findBinary('COMET_NGINX_BIN', 'nginx', ['/usr/sbin/nginx', '/usr/local/sbin/nginx']);
export const PHP_BIN = findBinary('COMET_PHP_BIN', 'php', ['/usr/bin/php']);

/** mod_php's shared object (libphp8.2.so, ...), or null. */
export function apachePhpModule() {
  if (process.env.COMET_APACHE_PHP_MODULE) return process.env.COMET_APACHE_PHP_MODULE;
  if (!existsSync(APACHE_MODULES)) return null;
  const found = readdirSync(APACHE_MODULES).filter((f) => /^libphp[\d.]*\.so$/.test(f)).sort();
  return found.length ? path.join(APACHE_MODULES, found[found.length - 1]) : null;
}

/** The environment without COMET_* (settings of the caller's own sidecar, if any). */
function cleanEnv(extra = {}) {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('COMET_') && !k.startsWith('DEMO_')));
  return { ...env, ...extra };
}

/** A temporary directory the server's unprivileged children can use when we are root. */
function tempDir(name) {
  const dir = mkdtempSync(path.join(os.tmpdir(), `comet-${name}-`));
  if (isRoot) chmodSync(dir, 0o755);
  return dir;
}

/**
 * A server process in its own process group: output collected, killed with the test
 * process, stop() = SIGTERM then SIGKILL, the temporary directory removed.
 */
class Server {
  constructor(name, child, dir, port, conf) {
    this.name = name;
    this.child = child;
    this.dir = dir;
    this.port = port;
    this.conf = conf;
    this.output = '';
    this.exit = null;
    for (const s of [child.stdout, child.stderr]) {
      if (!s) continue;
      s.setEncoding('utf8');
      s.on('data', (c) => {
        this.output += c;
      });
    }
    this.exited = new Promise((resolve) => {
      child.on('exit', (code, signal) => resolve((this.exit = { code, signal })));
      child.on('error', (error) => resolve((this.exit = { code: null, signal: null, error })));
    });
    this.onExit = () => this.killGroup();
    process.on('exit', this.onExit);
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  killGroup() {
    killGroup(this.child);
  }

  /** Extra diagnostics (logs) for failure messages. */
  logs() {
    return this.output;
  }

  async waitReady(extraLog = () => '') {
    try {
      await waitUntil(
        async () => {
          if (this.exit) throw new Error(`${this.name} exited at start (${JSON.stringify(this.exit)})`);
          return canConnect(this.port);
        },
        { timeoutMs: 15000, intervalMs: 50, what: `${this.name} to listen on ${this.port}` },
      );
    } catch (err) {
      const log = `${this.output}${extraLog()}`;
      await this.stop({ keepDir: false });
      throw new Error(`${err.message}\n--- ${this.name} output ---\n${log}\n--- configuration ---\n${this.conf}`);
    }
  }

  async stop({ keepDir = false } = {}) {
    if (this.exit === null) {
      this.child.kill('SIGTERM');
      try {
        await withTimeout(this.exited, 10000, `${this.name} to exit after SIGTERM`);
      } catch {
        this.killGroup();
        await this.exited;
      }
    }
    // Children (Apache's, php -S workers) left behind by a parent that died.
    this.killGroup();
    process.off('exit', this.onExit);
    if (!keepDir) rmSync(this.dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------
// Apache

/**
 * apache2 with the prefork MPM and mod_php serving `docRoot`, the shipped
 * deploy/apache/comet-proxy.conf included unchanged after `Define COMET_SIDECAR
 * <sidecarUrl>` (omit sidecarUrl to keep the recipe's default). `env`: SetEnv lines
 * (what the PHP pages see). `maxWorkers`: MaxRequestWorkers (prefork: processes).
 * `recipe`: another file instead of the shipped one (experiments).
 * Loads mod_deflate with Debian's default types, as a stock Debian Apache does: the
 * recipe must keep it off the streams.
 */
export async function startApache({ docRoot, sidecarUrl, env = {}, maxWorkers = 48, name = 'apache', recipe = APACHE_RECIPE } = {}) {
  if (!APACHE_BIN || !existsSync(APACHE_BIN)) {
    throw new Error('apache2 not found: install the Debian packages apache2-bin and libapache2-mod-php, or set COMET_APACHE_BIN');
  }
  const phpModule = apachePhpModule();
  if (!phpModule || !existsSync(phpModule)) {
    throw new Error(`mod_php not found in ${APACHE_MODULES}: install libapache2-mod-php, or set COMET_APACHE_PHP_MODULE`);
  }
  const dir = tempDir(name);
  for (const d of ['run', 'sessions']) mkdirSync(path.join(dir, d));
  if (isRoot) chmodSync(path.join(dir, 'sessions'), 0o1777);
  const port = await freePort();
  const compiledIn = execFileSync(APACHE_BIN, ['-l'], { encoding: 'utf8' });
  const modules = ['mpm_prefork', 'authz_core', 'mime', 'dir', 'proxy', 'proxy_http', 'headers', 'env', 'setenvif', 'filter', 'deflate']
    .filter((m) => !compiledIn.includes(`mod_${m}.c`))
    .map((m) => `LoadModule ${m}_module "${path.join(APACHE_MODULES, `mod_${m}.so`)}"`);
  const q = (s) => `"${String(s).replace(/["\\]/g, '\\$&')}"`;
  const conf = [
    `ServerRoot "${dir}"`,
    `DefaultRuntimeDir "${path.join(dir, 'run')}"`,
    `PidFile "${path.join(dir, 'run/httpd.pid')}"`,
    `Mutex file:${path.join(dir, 'run')} default`,
    ...modules,
    `LoadModule php_module "${phpModule}"`,
    ...(isRoot ? ['User nobody', 'Group nogroup'] : []),
    `Listen 127.0.0.1:${port}`,
    'ServerName 127.0.0.1',
    // prefork, as mod_php needs: one process per connection, open streams included.
    'StartServers 4',
    'MinSpareServers 2',
    'MaxSpareServers 8',
    `ServerLimit ${maxWorkers}`,
    `MaxRequestWorkers ${maxWorkers}`,
    'TypesConfig /etc/mime.types',
    `ErrorLog "${path.join(dir, 'error.log')}"`,
    'LogLevel warn',
    'LogFormat "%h \\"%r\\" %>s %B %Dus" short',
    `CustomLog "${path.join(dir, 'access.log')}" short`,
    // Debian's default mods-enabled/deflate.conf: text/html would cover the iframe and
    // htmlfile streams, were the recipe not to keep compression off /comet/.
    'AddOutputFilterByType DEFLATE text/html text/plain text/xml text/css text/javascript application/javascript application/ecmascript application/rss+xml application/xml',
    '<Directory "/">',
    '  AllowOverride None',
    '  Require all denied',
    '</Directory>',
    `DocumentRoot "${docRoot}"`,
    `<Directory "${docRoot}">`,
    '  Require all granted',
    '</Directory>',
    'DirectoryIndex index.php index.html',
    '<FilesMatch "\\.php$">',
    '  SetHandler application/x-httpd-php',
    '</FilesMatch>',
    `php_admin_value session.save_path "${path.join(dir, 'sessions')}"`,
    'php_admin_flag display_errors off',
    'php_admin_flag log_errors on',
    ...Object.entries(env).map(([k, v]) => `SetEnv ${k} ${q(v)}`),
    ...(sidecarUrl ? [`Define COMET_SIDECAR ${sidecarUrl}`] : []),
    `Include "${recipe}"`,
    '',
  ].join('\n');
  const confFile = path.join(dir, 'httpd.conf');
  writeFileSync(confFile, conf);
  const child = spawn(APACHE_BIN, ['-d', dir, '-f', confFile, '-D', 'FOREGROUND'], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: cleanEnv(),
  });
  const server = new Server(name, child, dir, port, conf);
  const errorLog = () => (existsSync(path.join(dir, 'error.log')) ? readFileSync(path.join(dir, 'error.log'), 'utf8') : '');
  server.logs = () => `${server.output}${errorLog()}`;
  server.accessLog = () => (existsSync(path.join(dir, 'access.log')) ? readFileSync(path.join(dir, 'access.log'), 'utf8') : '');
  server.confFile = confFile;
  await server.waitReady(errorLog);
  return server;
}

/**
 * What apache2 -t makes of the recipe, with `Define COMET_SIDECAR <sidecarUrl>` before
 * it or none: the run-time configuration dump (Define lines included).
 */
export async function apacheDumpRunConfig({ sidecarUrl } = {}) {
  const port = await freePort();
  const dir = tempDir('apache-t');
  try {
    const compiledIn = execFileSync(APACHE_BIN, ['-l'], { encoding: 'utf8' });
    const modules = ['mpm_prefork', 'authz_core', 'proxy', 'proxy_http', 'headers', 'env']
      .filter((m) => !compiledIn.includes(`mod_${m}.c`))
      .map((m) => `LoadModule ${m}_module "${path.join(APACHE_MODULES, `mod_${m}.so`)}"`);
    const conf = [
      `ServerRoot "${dir}"`,
      `PidFile "${path.join(dir, 'httpd.pid')}"`,
      ...modules,
      `Listen 127.0.0.1:${port}`,
      'ServerName 127.0.0.1',
      `ErrorLog "${path.join(dir, 'error.log')}"`,
      ...(sidecarUrl ? [`Define COMET_SIDECAR ${sidecarUrl}`] : []),
      `Include "${APACHE_RECIPE}"`,
      '',
    ].join('\n');
    writeFileSync(path.join(dir, 'httpd.conf'), conf);
    return execFileSync(APACHE_BIN, ['-d', dir, '-f', path.join(dir, 'httpd.conf'), '-t', '-D', 'DUMP_RUN_CFG'], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      env: cleanEnv(),
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------
// nginx

/**
 * deploy/nginx/comet-http.conf with its one upstream server address replaced by
 * `upstream` (nginx has no variables there); asserts nothing else would change.
 */
export function nginxHttpPart(upstream) {
  const recipe = readFileSync(NGINX_HTTP_RECIPE, 'utf8');
  const servers = [...recipe.matchAll(/^\s*server\s+([^\s;]+)[^;]*;/gm)].map((m) => m[1]);
  // The recipe proxies the public listener (8080), never the publish listener (8081).
  assert.deepEqual(servers, ['127.0.0.1:8080'], `${NGINX_HTTP_RECIPE}: upstream servers`);
  return recipe.replace(/^(\s*server\s+)127\.0\.0\.1:8080;/m, `$1${upstream};`);
}

/**
 * nginx on a free loopback port: http { comet-http.conf (upstream -> `upstream`) }
 * and a server { } with comet-locations.conf included unchanged, then `serverExtra`
 * (e.g. the app's location /). gzip is on for the usual types, as on many sites: the
 * recipe must keep it off the streams.
 */
export async function startNginx({ upstream, serverExtra = '', name = 'nginx', locations = NGINX_LOCATIONS_RECIPE } = {}) {
  if (!NGINX_BIN || !existsSync(NGINX_BIN)) {
    throw new Error('nginx not found: install the Debian package "nginx", or set COMET_NGINX_BIN');
  }
  const dir = tempDir(name);
  const port = await freePort();
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi'];
  for (const t of temp) mkdirSync(path.join(dir, t));
  const httpPart = path.join(dir, 'comet-http.conf');
  writeFileSync(httpPart, nginxHttpPart(upstream));
  const conf = [
    'worker_processes 1;',
    'events { worker_connections 1024; }',
    'http {',
    `  access_log ${path.join(dir, 'access.log')};`,
    ...temp.map((t) => `  ${t}_temp_path ${path.join(dir, t)};`),
    '  gzip on;',
    '  gzip_min_length 1;',
    '  gzip_types text/plain text/css application/json application/javascript text/event-stream application/x-ndjson;',
    `  include ${httpPart};`,
    '  server {',
    `    listen 127.0.0.1:${port};`,
    '    server_name localhost;',
    `    include ${locations};`,
    serverExtra,
    '  }',
    '}',
    '',
  ].join('\n');
  const confFile = path.join(dir, 'nginx.conf');
  writeFileSync(confFile, conf);
  const child = spawn(
    NGINX_BIN,
    ['-e', 'stderr', '-p', dir, '-c', confFile, '-g', `daemon off; pid ${path.join(dir, 'nginx.pid')}; error_log stderr warn;`],
    { stdio: ['ignore', 'pipe', 'pipe'], detached: true, env: cleanEnv() },
  );
  const server = new Server(name, child, dir, port, conf);
  server.accessLog = () => (existsSync(path.join(dir, 'access.log')) ? readFileSync(path.join(dir, 'access.log'), 'utf8') : '');
  await server.waitReady();
  return server;
}

// ---------------------------------------------------------------------------------
// php -S

/**
 * PHP's built-in server on `docRoot` (PHP_CLI_SERVER_WORKERS workers), `env` in its
 * environment (the pages read their settings from it), sessions in a temporary folder.
 */
export async function startPhpServer({ docRoot, env = {}, workers = 4, name = 'php' } = {}) {
  if (!PHP_BIN || !existsSync(PHP_BIN)) throw new Error('php not found: install the Debian package php-cli, or set COMET_PHP_BIN');
  const dir = tempDir(name);
  mkdirSync(path.join(dir, 'sessions'));
  const port = await freePort();
  const args = ['-d', `session.save_path=${path.join(dir, 'sessions')}`, '-d', 'display_errors=stderr', '-S', `127.0.0.1:${port}`, '-t', docRoot];
  const child = spawn(PHP_BIN, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
    env: cleanEnv({ ...env, PHP_CLI_SERVER_WORKERS: String(workers) }),
  });
  const server = new Server(name, child, dir, port, `${PHP_BIN} ${args.join(' ')}`);
  await server.waitReady();
  return server;
}
