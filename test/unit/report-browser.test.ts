/**
 * report.html in a real browser: headless Chromium (Debian's `chromium`, found or installed by
 * scripts/ensure-chromium.sh) takes a screenshot of the self-contained report, and the test checks
 * by pixel statistics that both plots are drawn: each plot draws its data in its own colour
 * (validation accuracy #1f77b4, train reward #ff7f0e) that nothing else on the page uses, so the
 * screenshot must hold a large, wide region of each. A control copy of the page without the
 * image data must show neither colour.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inflateSync } from 'node:zlib';
import { reportPython, writeReportForDir } from '../../src/report/write.js';
import { REPO_ROOT, stateDir } from '../../src/common/state.js';
import { writeRunFixture } from '../report-fixture.js';

interface Image {
  width: number;
  height: number;
  /** RGBA, 4 bytes per pixel. */
  pixels: Buffer;
}

/** Minimal PNG decoder: 8-bit RGB / RGBA, non-interlaced (what Chromium writes). */
export function decodePng(buf: Buffer): Image {
  assert.equal(buf.subarray(0, 8).toString('hex'), '89504e470d0a1a0a', 'not a PNG');
  let off = 8;
  let width = 0;
  let height = 0;
  let colorType = 0;
  const idat: Buffer[] = [];
  while (off < buf.length) {
    const len = buf.readUInt32BE(off);
    const type = buf.toString('ascii', off + 4, off + 8);
    const data = buf.subarray(off + 8, off + 8 + len);
    if (type === 'IHDR') {
      width = data.readUInt32BE(0);
      height = data.readUInt32BE(4);
      assert.equal(data[8], 8, 'bit depth 8');
      colorType = data[9]!;
      assert.ok(colorType === 2 || colorType === 6, `colour type ${colorType}`);
      assert.equal(data[12], 0, 'non-interlaced');
    } else if (type === 'IDAT') idat.push(data);
    else if (type === 'IEND') break;
    off += 12 + len;
  }
  const bpp = colorType === 6 ? 4 : 3;
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * bpp;
  const out = Buffer.alloc(width * height * 4);
  let prev = Buffer.alloc(stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    const line = Buffer.from(raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1)));
    for (let i = 0; i < stride; i++) {
      const a = i >= bpp ? line[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v = line[i]!;
      if (filter === 1) v += a;
      else if (filter === 2) v += b;
      else if (filter === 3) v += (a + b) >> 1;
      else if (filter === 4) {
        const p = a + b - c;
        const pa = Math.abs(p - a);
        const pb = Math.abs(p - b);
        const pc = Math.abs(p - c);
        v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      }
      line[i] = v & 0xff;
    }
    for (let x = 0; x < width; x++) {
      out[(y * width + x) * 4] = line[x * bpp]!;
      out[(y * width + x) * 4 + 1] = line[x * bpp + 1]!;
      out[(y * width + x) * 4 + 2] = line[x * bpp + 2]!;
      out[(y * width + x) * 4 + 3] = bpp === 4 ? line[x * bpp + 3]! : 255;
    }
    prev = line;
  }
  return { width, height, pixels: out };
}

/** Pixels within `tol` of an RGB colour, and their bounding box. */
function colourRegion(img: Image, rgb: [number, number, number], tol = 14): { count: number; box: { x0: number; y0: number; x1: number; y1: number } | null } {
  let count = 0;
  let box: { x0: number; y0: number; x1: number; y1: number } | null = null;
  for (let y = 0; y < img.height; y++)
    for (let x = 0; x < img.width; x++) {
      const i = (y * img.width + x) * 4;
      if (Math.abs(img.pixels[i]! - rgb[0]) <= tol && Math.abs(img.pixels[i + 1]! - rgb[1]) <= tol && Math.abs(img.pixels[i + 2]! - rgb[2]) <= tol) {
        count++;
        box = box ? { x0: Math.min(box.x0, x), y0: Math.min(box.y0, y), x1: Math.max(box.x1, x), y1: Math.max(box.y1, y) } : { x0: x, y0: y, x1: x, y1: y };
      }
    }
  return { count, box };
}

function chromium(): string {
  return execFileSync('bash', [join(REPO_ROOT, 'scripts', 'ensure-chromium.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim().split('\n').at(-1)!;
}

function screenshot(browser: string, html: string, png: string, profile: string): Image {
  execFileSync(
    browser,
    ['--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars', '--no-first-run', `--user-data-dir=${profile}`, '--window-size=1000,2600', `--screenshot=${png}`, `file://${html}`],
    { stdio: 'ignore', timeout: 120_000 },
  );
  return decodePng(readFileSync(png));
}

const VALIDATION_BLUE: [number, number, number] = [0x1f, 0x77, 0xb4];
const REWARD_ORANGE: [number, number, number] = [0xff, 0x7f, 0x0e];

test('report.html shows its plots in headless Chromium (pixel statistics), and a control without images shows none', { timeout: 600_000 }, async () => {
  const python = reportPython(stateDir());
  assert.ok(python, 'needs the trainer environment (npm test builds it) or GRPO_REPORT_PYTHON');
  const browser = chromium();
  const dir = mkdtempSync(join(tmpdir(), 'grpo-report-browser-'));
  try {
    const runDir = join(dir, 'run');
    writeRunFixture(runDir);
    const r = await writeReportForDir(runDir, { python });
    assert.equal(r.plots, 3, r.plotError ?? ''); // validation, reward, evaluation points
    const shot = screenshot(browser, r.html, join(dir, 'report.png'), join(dir, 'profile'));
    assert.ok(shot.width >= 900 && shot.height >= 2000, `screenshot ${shot.width}x${shot.height}`);
    for (const [name, rgb] of [['validation accuracy', VALIDATION_BLUE], ['train reward', REWARD_ORANGE]] as const) {
      const region = colourRegion(shot, rgb);
      assert.ok(region.count > 500, `${name} plot: only ${region.count} pixels of its colour on the page`);
      const { x0, y0, x1, y1 } = region.box!;
      assert.ok(x1 - x0 > 300 && y1 - y0 > 60, `${name} plot: its data spans only ${x1 - x0}x${y1 - y0} px`);
    }
    // The plots are separate figures: the validation plot comes first (above the reward plot).
    assert.ok(colourRegion(shot, VALIDATION_BLUE).box!.y0 < colourRegion(shot, REWARD_ORANGE).box!.y0);
    // Control: the same page without its image data has neither colour anywhere.
    const control = join(dir, 'control.html');
    writeFileSync(control, readFileSync(r.html, 'utf8').replace(/src="data:image\/png;base64,[^"]*"/g, 'src=""'));
    const blank = screenshot(browser, control, join(dir, 'control.png'), join(dir, 'profile'));
    assert.ok(colourRegion(blank, VALIDATION_BLUE).count < 50 && colourRegion(blank, REWARD_ORANGE).count < 50, 'colours present without the images');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
