import { packageConfig } from '../../tsup.shared';

// worker-device is its own entry: @fairkv/runtime's device workers import dist/worker-device.js (shims:
// the CJS build needs import.meta.url to name it).
export default packageConfig({ index: 'src/index.ts', 'worker-device': 'src/worker-device.ts' }, { shims: true });
