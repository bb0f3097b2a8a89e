// The `cookie` package (express-session's parser) ships no types at the version installed.
declare module 'cookie' {
  export function parse(header: string): Record<string, string | undefined>
}
