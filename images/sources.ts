import { realpath } from 'node:fs/promises';
import path from 'node:path';

/**
 * Where the operator lets a caller of images.create have vagoth read an image from: the
 * source is the caller's, the files and servers it reaches are not. Empty lists allow nothing.
 */
export interface ImageSourcePolicy {
  /** Absolute paths of directories an image file may lie under (VAGOTH_IMAGE_DIRS). */
  dirs: readonly string[];
  /** http(s) URL prefixes an image URL must start with (VAGOTH_IMAGE_URLS). */
  urls: readonly string[];
}

export type ImageSource = { kind: 'file'; path: string } | { kind: 'url'; url: URL };

/** A source the policy refuses; the message says why, in vagoth's words. */
export class ImageSourceError extends Error {
  override name = 'ImageSourceError';
}

const within = (dirs: readonly string[], file: string) =>
  dirs.some((d) => file.startsWith(d.endsWith('/') ? d : `${d}/`));

/** The prefixes as URLs parse them, so `https://a.example` cannot admit `https://a.example.evil`. */
function prefixes(urls: readonly string[]): string[] {
  return urls.map((u) => new URL(u).href);
}

/**
 * Admits `source` as written (no file is opened): an absolute path under one of the policy's
 * directories, or an http(s) URL under one of its prefixes, without credentials. The worker
 * checks a file again where it lies (`resolveImageFile`), symbolic links followed.
 */
export function admitImageSource(source: string, policy: ImageSourcePolicy): ImageSource {
  if (source.startsWith('/')) {
    const file = path.posix.normalize(source);
    if (file !== source || source.endsWith('/')) {
      throw new ImageSourceError('must name a file plainly: no ., .. or empty segments');
    }
    if (!within(policy.dirs, file)) {
      throw new ImageSourceError('a file must lie under a directory of VAGOTH_IMAGE_DIRS');
    }
    return { kind: 'file', path: file };
  }
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new ImageSourceError('must be an absolute path or an http(s) URL');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ImageSourceError('must be an absolute path or an http(s) URL');
  }
  if (url.username !== '' || url.password !== '') {
    throw new ImageSourceError('a URL with credentials is refused');
  }
  admitUrl(url, policy);
  return { kind: 'url', url };
}

/** An image URL (or a redirect's target) must start with a prefix of VAGOTH_IMAGE_URLS. */
export function admitUrl(url: URL, policy: ImageSourcePolicy): void {
  url.hash = '';
  if (!prefixes(policy.urls).some((p) => url.href.startsWith(p))) {
    throw new ImageSourceError('a URL must start with a prefix of VAGOTH_IMAGE_URLS');
  }
}

/**
 * The file an admitted path names, where it really lies: refused unless that is a directory
 * of the policy's, as the directories themselves really lie, so no symbolic link leads out.
 */
export async function resolveImageFile(file: string, policy: ImageSourcePolicy): Promise<string> {
  let real: string;
  try {
    real = await realpath(file);
  } catch {
    throw new ImageSourceError('no such file');
  }
  const dirs = await Promise.all(policy.dirs.map((d) => realpath(d).catch(() => null)));
  if (
    !within(
      dirs.filter((d): d is string => d !== null),
      real,
    )
  ) {
    throw new ImageSourceError('the file lies outside VAGOTH_IMAGE_DIRS once links are followed');
  }
  return real;
}
