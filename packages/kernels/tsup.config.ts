import { packageConfig } from '../../tsup.shared';

// the conformance suite (`testing` entry) runs inside the caller's vitest: never bundle it
export default packageConfig({ index: 'src/index.ts', testing: 'src/testing/index.ts' }, { external: ['vitest'] });
