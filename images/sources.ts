import { constants } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { outsidePrefixes } from '../common/url-prefix.ts';

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

/**
 * Admits `source` as written (no file is opened): an absolute path under one of the policy's
 * directories, or an http(s) URL under one of its prefixes, without credentials. The worker
 * checks a file again where the opened file really lies (`openImageFile`).
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
  const why = outsidePrefixes(url, policy.urls);
  if (why === 'no allowed prefix') {
    throw new ImageSourceError('a URL must start with a prefix of VAGOTH_IMAGE_URLS');
  }
  if (why) throw new ImageSourceError(why);
}

/** Where an open file really lies: the kernel's own answer, not the name it was opened by. */
async function whereOpen(handle: FileHandle): Promise<string> {
  return readlink(`/proc/self/fd/${handle.fd}`);
}

/**
 * Opens the file an admitted path names, for reading: refused unless it is a regular file and,
 * where the open file really lies, under a directory of the policy's (as the directories
 * themselves really lie). The check is of the file opened, not of its name, so no link swapped
 * in between checking and opening leads out; a FIFO or device is never waited on (O_NONBLOCK).
 */
export async function openImageFile(file: string, policy: ImageSourcePolicy): Promise<FileHandle> {
  let handle: FileHandle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch {
    throw new ImageSourceError('no such file, or it cannot be read');
  }
  try {
    if (!(await handle.stat()).isFile()) throw new ImageSourceError('not a regular file');
    const dirs = await Promise.all(policy.dirs.map((d) => realpath(d).catch(() => null)));
    if (
      !within(
        dirs.filter((d): d is string => d !== null),
        await whereOpen(handle),
      )
    ) {
      throw new ImageSourceError('the file lies outside VAGOTH_IMAGE_DIRS once links are followed');
    }
    return handle;
  } catch (err) {
    await handle.close();
    throw err;
  }
}
