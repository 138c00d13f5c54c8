// One jest --json report out of several runs' (scripts/test.sh runs the unit and e2e projects apart): counts added,
// results joined, a success only if every run succeeded. A run that wrote no report (jest itself failed) makes the
// merged report a failure rather than a smaller success.
// Usage: node scripts/merge-reports.mjs <out.json> <report.json>...
import { readFileSync, writeFileSync } from 'node:fs';
import { argv, exit, stderr } from 'node:process';

const [out, ...inputs] = argv.slice(2);
if (!out || inputs.length === 0) {
  stderr.write('usage: node scripts/merge-reports.mjs <out.json> <report.json>...\n');
  exit(2);
}

const reports = [];
let missing = false;
for (const path of inputs) {
  try {
    reports.push(JSON.parse(readFileSync(path, 'utf8')));
  } catch (err) {
    stderr.write(`no jest report at ${path}: ${err.message}\n`);
    missing = true;
  }
}

const counted = Object.keys(reports[0] ?? {}).filter((k) => k.startsWith('num'));
const merged = { ...(reports[0] ?? {}) };
for (const key of counted) merged[key] = reports.reduce((sum, r) => sum + (r[key] ?? 0), 0);
merged.success = !missing && reports.every((r) => r.success);
merged.wasInterrupted = reports.some((r) => r.wasInterrupted);
merged.startTime = Math.min(...reports.map((r) => r.startTime ?? Infinity));
merged.testResults = reports.flatMap((r) => r.testResults ?? []);
merged.openHandles = reports.flatMap((r) => r.openHandles ?? []);
writeFileSync(out, JSON.stringify(merged));
exit(merged.success ? 0 : 1);
