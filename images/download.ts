import { createReadStream } from 'node:fs';
import http, { type IncomingMessage } from 'node:http';
import https from 'node:https';
import {
  admitUrl,
  ImageSourceError,
  openImageFile,
  type ImageSource,
  type ImageSourcePolicy,
} from './sources.ts';

/** Redirects an import follows, each to a URL the policy admits. */
const MAX_REDIRECTS = 5;
/** A server silent this long (no header, no byte) is given up on. */
const IDLE_MS = 60_000;

export interface OpenedSource {
  chunks: AsyncIterable<Uint8Array>;
  /** How many bytes the source says it holds; null where it does not say. */
  total: number | null;
}

/**
 * Opens an admitted source for reading: a file (openImageFile: regular, and where it really
 * lies under the policy's directories) or an HTTP(S) GET, following redirects only to URLs the
 * policy admits. A source that says it holds more than `maxBytes` is refused before a byte is
 * read; a server that refuses the request is refused for good, one in trouble (5xx, 429)
 * tried again.
 */
export async function openSource(
  source: ImageSource,
  policy: ImageSourcePolicy,
  maxBytes: number,
  signal?: AbortSignal,
): Promise<OpenedSource> {
  const tooLarge = (total: number | null) => {
    if (total !== null && total > maxBytes) {
      throw new ImageSourceError(
        `it holds ${total} bytes, more than ${maxBytes} (VAGOTH_IMAGE_MAX_GIB)`,
      );
    }
  };
  if (source.kind === 'file') {
    const handle = await openImageFile(source.path, policy);
    const { size } = await handle.stat();
    try {
      tooLarge(size);
    } catch (err) {
      await handle.close();
      throw err;
    }
    const stream = createReadStream('', { fd: handle, highWaterMark: 1024 * 1024 });
    if (signal) signal.addEventListener('abort', () => stream.destroy(), { once: true });
    return { chunks: stream, total: size };
  }
  let url = source.url;
  for (let hop = 0; ; hop++) {
    const response = await get(url, signal);
    const status = response.statusCode ?? 0;
    const location = response.headers.location;
    if (status >= 300 && status < 400 && location !== undefined) {
      response.destroy();
      if (hop === MAX_REDIRECTS) throw new ImageSourceError(`more than ${MAX_REDIRECTS} redirects`);
      url = new URL(location, url);
      admitUrl(url, policy);
      continue;
    }
    if (status !== 200) {
      response.destroy();
      const message = `the server answered HTTP ${status}`;
      // A server's trouble may pass; a refusal of the request will not.
      if (status >= 500 || status === 429) throw new Error(message);
      throw new ImageSourceError(message);
    }
    const encoding = response.headers['content-encoding'];
    if (encoding !== undefined && encoding !== 'identity') {
      response.destroy();
      throw new ImageSourceError(
        'the server sent it encoded (Content-Encoding): bytes as stored are needed',
      );
    }
    const length = Number(response.headers['content-length'] ?? NaN);
    const total = Number.isSafeInteger(length) && length >= 0 ? length : null;
    try {
      tooLarge(total);
    } catch (err) {
      response.destroy();
      throw err;
    }
    return { chunks: response, total };
  }
}

/**
 * One GET, no redirect followed and nothing decoded (no Accept-Encoding is sent: the bytes
 * hashed are the bytes served). Node's own client: its streams cost half the CPU of fetch's.
 */
function get(url: URL, signal: AbortSignal | undefined): Promise<IncomingMessage> {
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const request = client.get(url, { ...(signal ? { signal } : {}) }, resolve);
    request.setTimeout(IDLE_MS, () =>
      request.destroy(new Error('the server sent nothing for a minute')),
    );
    request.once('error', reject);
  });
}
