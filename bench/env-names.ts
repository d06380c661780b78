/**
 * A benchmark's comma-separated selection of names from the environment (shapes, kernel paths): the
 * names in the order given, or `undefined` when the variable is unset (run everything). A name not in
 * `known` throws, naming the variable, the unknown names and the known ones.
 */
export function namesFromEnv(name: string, known: readonly string[]): string[] | undefined {
  const text = process.env[name];
  if (text === undefined) return undefined;
  const names = text.split(',').map((entry) => entry.trim());
  const unknown = names.filter((entry) => !known.includes(entry));
  if (unknown.length > 0) {
    throw new Error(`${name}: unknown name(s) ${JSON.stringify(unknown)}; known: ${known.join(', ')}`);
  }
  return names;
}

/**
 * A benchmark's single choice from the environment (a dtype, a mode): `fallback` when the variable is
 * unset or empty, else its trimmed value, which must be one of `known` (otherwise throws, naming the
 * variable, the value and the known choices).
 */
export function nameFromEnv<T extends string>(name: string, known: readonly T[], fallback: T): T {
  const text = process.env[name]?.trim();
  if (text === undefined || text === '') return fallback;
  if (!(known as readonly string[]).includes(text)) {
    throw new Error(`${name}: expected one of ${known.join(', ')}, got ${JSON.stringify(text)}`);
  }
  return text as T;
}
