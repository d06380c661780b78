import { describeBackendConformance } from '@fairkv/kernels/testing';
import { createCpuBackend } from './cpu-backend.js';

describeBackendConformance(() => createCpuBackend(), createCpuBackend().capabilities);
