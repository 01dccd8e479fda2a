// style.readme_flags: the README's "## Configuration" table (columns flag, env, default,
// what) must list exactly the options `comet-sidecar --help` prints, each with the same
// environment variable, and a value placeholder exactly when the option takes a value.
//
//   node tests/style/readme_flags.mjs README.md path/to/comet-sidecar
//
// Defaults are compared only where --help states a single-token default, e.g.
// "(default 64k)" or "(default *)": the README's default, without backticks and without a
// trailing "(...)" remark, must be that token ("0 (never)" matches "(default 0)"). Prose
// defaults such as "(default: one per core)" or a bare "(default)" are not compared: the
// README words those in its own way ("cores"), and matching prose would be fragile.
//
// Exit status: 0 when they agree; 1 listing every difference; 2 on a usage or parse error.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';

function die(message) {
  console.error(`readme_flags: ERROR: ${message}`);
  process.exit(2);
}

const [readmePath, binary] = process.argv.slice(2);
if (!readmePath || !binary) die('usage: node readme_flags.mjs README.md path/to/comet-sidecar');

// ---- the binary's --help -------------------------------------------------------------

function runHelp() {
  // The sidecar reads COMET_* variables before flags and refuses bad ones; keep the test
  // independent of whatever the calling environment exports.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('COMET_')),
  );
  try {
    return execFileSync(binary, ['--help'], { env, encoding: 'utf8', timeout: 4000 });
  } catch (err) {
    die(`'${binary} --help' failed: ${err.message}\n${err.stderr ?? ''}`);
  }
}

// Layout of config_help() (sidecar/config/config.cpp):
//   "  --flag VALUE                 help text (default X)"
//   "                               [COMET_ENV]"
function parseHelp(text) {
  const options = new Map();
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const m = /^ {2}(--[a-z0-9][a-z0-9-]*)(?: ([^\s]+))?\s+(.*)$/.exec(lines[i]);
    if (!m) continue;
    const [, flag, valueName, help] = m;
    const envLine = /^\s+\[(COMET_[A-Z0-9_]+)\]\s*$/.exec(lines[i + 1] ?? '');
    if (!envLine) die(`--help: no "[COMET_...]" line after "${lines[i].trim()}"; did its format change?`);
    const dflt = /\(default:?\s*([^)]*)\)/.exec(help);
    options.set(flag, {
      flag,
      env: envLine[1],
      takesValue: valueName !== undefined,
      default: dflt ? dflt[1].trim() : null,
    });
    i++;
  }
  if (options.size === 0) die(`found no options in the --help output:\n${text}`);
  return options;
}

// ---- the README table ----------------------------------------------------------------

function splitRow(line) {
  // Markdown escapes a "|" inside a cell as "\|".
  const cells = line.trim().replace(/^\|/, '').replace(/(?<!\\)\|$/, '').split(/(?<!\\)\|/);
  return cells.map((c) => c.trim());
}

function parseReadme(text) {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => /^##\s+Configuration\s*$/.test(l));
  if (start < 0) die(`${readmePath}: no "## Configuration" section`);
  let i = start + 1;
  while (i < lines.length && !lines[i].startsWith('|') && !/^##\s/.test(lines[i])) i++;
  if (i >= lines.length || !lines[i].startsWith('|')) die(`${readmePath}: no table under "## Configuration"`);
  const header = splitRow(lines[i]).map((c) => c.toLowerCase());
  if (header.join(',') !== 'flag,env,default,what')
    die(`${readmePath}: the Configuration table's columns are "${header.join(' | ')}", expected "flag | env | default | what"`);
  i += 2;  // header and the | --- | separator

  const rows = [];
  const problems = [];
  for (; i < lines.length && lines[i].startsWith('|'); i++) {
    const lineNo = i + 1;
    const cells = splitRow(lines[i]);
    if (cells.length !== 4) {
      problems.push(`README line ${lineNo}: ${cells.length} cells, expected 4: ${lines[i]}`);
      continue;
    }
    const [flagCell, envCell, defaultCell] = cells;
    const flag = /^`?(--[a-z0-9][a-z0-9-]*)(?:[ =]([^`]+))?`?$/.exec(flagCell);
    const env = /^`?(COMET_[A-Z0-9_]+)`?$/.exec(envCell);
    if (!flag) problems.push(`README line ${lineNo}: flag cell "${flagCell}" is not \`--flag [VALUE]\``);
    if (!env) problems.push(`README line ${lineNo}: env cell "${envCell}" is not \`COMET_...\``);
    if (!flag || !env) continue;
    rows.push({
      line: lineNo,
      flag: flag[1],
      takesValue: flag[2] !== undefined,
      env: env[1],
      default: defaultCell,
    });
  }
  if (rows.length === 0 && problems.length === 0) die(`${readmePath}: the Configuration table is empty`);
  return { rows, problems };
}

// "`0` (never)" -> "0", "`*`" -> "*", "1m" -> "1m"
function normaliseDefault(text) {
  return text
    .replace(/`/g, '')
    .replace(/\s*\([^)]*\)\s*$/, '')
    .trim()
    .toLowerCase();
}

// ---- compare -------------------------------------------------------------------------

const help = parseHelp(runHelp());
const { rows, problems } = parseReadme(readFileSync(readmePath, 'utf8'));

const readmeByFlag = new Map();
const readmeEnvs = new Set();
for (const row of rows) {
  if (readmeByFlag.has(row.flag))
    problems.push(`README line ${row.line}: ${row.flag} is listed twice (also line ${readmeByFlag.get(row.flag).line})`);
  else readmeByFlag.set(row.flag, row);
  readmeEnvs.add(row.env);
}
const helpEnvs = new Set([...help.values()].map((o) => o.env));

for (const opt of help.values()) {
  const row = readmeByFlag.get(opt.flag);
  if (!row) {
    problems.push(`${opt.flag} [${opt.env}] is in --help but has no row in the README table`);
    continue;
  }
  if (row.env !== opt.env)
    problems.push(`${opt.flag}: README line ${row.line} says env ${row.env}, --help says ${opt.env}`);
  if (row.takesValue !== opt.takesValue)
    problems.push(
      `${opt.flag}: ${opt.takesValue ? 'takes a value' : 'is a switch'} in --help, but README line ${row.line} ` +
        (row.takesValue ? 'shows a value placeholder' : 'shows no value placeholder'),
    );
  if (opt.default !== null && opt.default !== '' && !/\s/.test(opt.default)) {
    const want = opt.default.toLowerCase();
    const got = normaliseDefault(row.default);
    if (got !== want)
      problems.push(`${opt.flag}: README line ${row.line} gives default "${row.default}", --help says "${opt.default}"`);
  }
}
for (const row of readmeByFlag.values())
  if (!help.has(row.flag))
    problems.push(`${row.flag} [${row.env}] (README line ${row.line}) is not an option in --help`);
for (const env of helpEnvs)
  if (!readmeEnvs.has(env)) problems.push(`env ${env} is in --help but not in the README table`);
for (const env of readmeEnvs)
  if (!helpEnvs.has(env)) problems.push(`env ${env} is in the README table but not in --help`);

if (problems.length > 0) {
  console.log(`readme_flags: FAIL: the README "## Configuration" table and \`comet-sidecar --help\` differ:`);
  for (const p of problems) console.log(`  - ${p}`);
  console.log('Update the table in README.md (the truth is sidecar/config/config.cpp).');
  process.exit(1);
}
console.log(`readme_flags: the README table matches --help (${help.size} options, flags and env variables)`);
