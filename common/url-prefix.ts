/**
 * Pure: whether a URL lies under one of an operator's allowed prefixes, the one check for every
 * URL a caller names and vagoth opens (image sources, clusters of a cloud).
 */

/**
 * The prefixes as URLs parse them, each ending at a path segment's end: `https://a.example`
 * cannot admit `https://a.example.evil`, nor `https://a.example/images` `.../images-private`.
 */
export function urlPrefixes(urls: readonly string[]): string[] {
  return urls.map((u) => {
    const { href } = new URL(u);
    return href.endsWith('/') ? href : `${href}/`;
  });
}

/**
 * Encoded separators and NULs a server might decode after the prefix was checked (WHATWG
 * parsing leaves them be), and backslashes some servers take for slashes.
 */
const SMUGGLED = /%2f|%5c|%00|\\/i;

/**
 * Why `url` is refused (its fragment dropped first), or null when it starts with one of
 * `allowed`: an encoded slash, backslash or NUL in its path, or no prefix that admits it.
 */
export function outsidePrefixes(url: URL, allowed: readonly string[]): string | null {
  url.hash = '';
  if (SMUGGLED.test(url.pathname)) {
    return 'a URL path with an encoded slash, backslash or NUL is refused';
  }
  // The prefix itself too: `https://c.example/trpc` admits that endpoint and what lies under it.
  const admitted = urlPrefixes(allowed).some((p) => url.href.startsWith(p) || `${url.href}/` === p);
  return admitted ? null : 'no allowed prefix';
}
