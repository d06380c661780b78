import { packageConfig } from '../../tsup.shared';

// shims: the CJS build needs import.meta.url (the ILP resolves glpk.js/node from it for its worker thread).
export default packageConfig({ index: 'src/index.ts', ilp: 'src/ilp/index.ts' }, { shims: true });
