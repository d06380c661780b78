import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { codeForDevice, readAddonBuild } from './addon-build.js';

const folders: string[] = [];
afterEach(() => {
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

/** An addon path in a fresh folder whose build-info.json holds `contents` (none when undefined). */
function addonWith(contents: string | undefined): string {
  const folder = mkdtempSync(join(tmpdir(), 'fairkv-addon-build-'));
  folders.push(folder);
  if (contents !== undefined) writeFileSync(join(folder, 'build-info.json'), contents);
  return join(folder, 'fairkv_cuda.node');
}

const DEFAULT_BUILD = { nvcc: 'Build cuda_13.0', probeOnly: false, architectures: ['sm_80', 'sm_90a', 'compute_90'] };

describe('readAddonBuild', () => {
  it('reads the record the build script writes beside the addon', () => {
    const path = addonWith(JSON.stringify({ ...DEFAULT_BUILD, seconds: 107.5, bytes: 10986832 }));
    expect(readAddonBuild(path)).toEqual(DEFAULT_BUILD);
  });

  it('is undefined when the record is missing, not JSON, or not a build record', () => {
    expect(readAddonBuild(addonWith(undefined))).toBeUndefined();
    expect(readAddonBuild(addonWith('{ not json'))).toBeUndefined();
    expect(readAddonBuild(addonWith('[1, 2]'))).toBeUndefined();
    expect(readAddonBuild(addonWith(JSON.stringify({ ...DEFAULT_BUILD, architectures: 'sm_90' })))).toBeUndefined();
    expect(
      readAddonBuild(addonWith(JSON.stringify({ ...DEFAULT_BUILD, architectures: ['sm_90', 7] }))),
    ).toBeUndefined();
    expect(readAddonBuild(addonWith(JSON.stringify({ ...DEFAULT_BUILD, probeOnly: 'no' })))).toBeUndefined();
  });
});

describe('codeForDevice', () => {
  it('gives each GPU its own machine code where the build has it', () => {
    expect(codeForDevice(DEFAULT_BUILD, '9.0')).toBe('sm_90a');
    expect(codeForDevice(DEFAULT_BUILD, '8.0')).toBe('sm_80');
  });

  it('runs older plain machine code of the same major version, never arch-specific code of another capability', () => {
    expect(codeForDevice(DEFAULT_BUILD, '8.6')).toBe('sm_80');
    expect(codeForDevice({ ...DEFAULT_BUILD, architectures: ['sm_90', 'compute_90'] }, '9.0')).toBe('sm_90');
    // a newer GPU: sm_90a does not run there, the PTX does
    expect(codeForDevice(DEFAULT_BUILD, '10.0')).toBe('compute_90 PTX (compiled by the driver at load time)');
  });

  it('is undefined when nothing in the build runs on the device, or the capability is not major.minor', () => {
    expect(codeForDevice(DEFAULT_BUILD, '7.5')).toBeUndefined();
    expect(codeForDevice(DEFAULT_BUILD, 'nine')).toBeUndefined();
  });
});
