/** htmx's minified build, imported `with { type: 'text' }` so Bun embeds it as a string. */
declare module 'htmx.org/dist/htmx.min.js' {
  const source: string;
  export default source;
}
