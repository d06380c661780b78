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
