import { ValidationError } from '@fairkv/core';

/** The error a scorer throws when the observation lacks the input it reads. */
export function missingInput(scorer: string, field: string, expected: string): ValidationError {
  return new ValidationError(`the ${scorer} scorer needs observation.${field}: ${expected}`, [
    { path: `$.${field}`, message: `missing or too small: ${expected}` },
  ]);
}
