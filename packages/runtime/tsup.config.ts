import { packageConfig } from '../../tsup.shared';

// device-worker is its own entry: worker threads load dist/device-worker.js beside dist/index.js.
export default packageConfig(
  { index: 'src/index.ts', 'device-worker': 'src/engine/device-worker.ts' },
  { shims: true },
);
