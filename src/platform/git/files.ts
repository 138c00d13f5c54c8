/**
 * Reading and writing a file of the working tree without ever leaving it. The settings' path check is textual; a
 * repository can still hold a symbolic link (`app -> ../../other-team-clone/app`, `values.yaml -> /etc/passwd`), and
 * plain `readFile`/`writeFile` follow it. So every component of the path is looked at with `lstat`, a symbolic link
 * anywhere is refused, and the file itself is opened with O_NOFOLLOW, under the tree's lock.
 */
import { constants } from 'node:fs';
import { lstat, open } from 'node:fs/promises';
import { join } from 'node:path';
import { GitError } from './command.js';

/** Files larger than this are not read: they are not manifests a person maintains. */
export const MAX_FILE_BYTES = 1024 * 1024;

async function checkedPath(root: string, file: string): Promise<string> {
  const parts = file.split('/');
  if (
    file.startsWith('/') ||
    parts.some((p) => p === '' || p === '.' || p === '..') ||
    parts[0]?.toLowerCase() === '.git' ||
    /[\x00]/.test(file)
  ) {
    throw new GitError('GIT_UNSAFE_PATH', `${file}: not a plain path inside the repository`);
  }
  let path = root;
  for (const [i, part] of parts.entries()) {
    path = join(path, part);
    const stat = await lstat(path).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return undefined;
      throw err;
    });
    const shown = parts.slice(0, i + 1).join('/');
    if (!stat) throw new GitError('GIT_FILE_MISSING', `${file} does not exist on the branch; check images[].file in the settings`);
    if (stat.isSymbolicLink()) {
      throw new GitError(
        'GIT_UNSAFE_PATH',
        `${file}: ${shown} is a symbolic link in the repository; the service edits only regular files and never follows links`,
      );
    }
    const last = i === parts.length - 1;
    if (!last && !stat.isDirectory())
      throw new GitError('GIT_FILE_MISSING', `${file} does not exist on the branch (${shown} is not a directory)`);
    if (last && !stat.isFile()) throw new GitError('GIT_UNSAFE_PATH', `${file} is not a regular file`);
  }
  return path;
}

/** The text of `file` (relative to the tree `root`). */
export async function readInTree(root: string, file: string, maxBytes = MAX_FILE_BYTES): Promise<string> {
  const handle = await open(await checkedPath(root, file), constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const { size } = await handle.stat();
    if (size > maxBytes)
      throw new GitError('MANIFEST_EDIT_FAILED', `${file} is ${size} bytes, larger than the ${maxBytes} bytes the service edits`);
    return await handle.readFile('utf8');
  } finally {
    await handle.close();
  }
}

/** Replaces the content of the existing regular file `file` (relative to the tree `root`). */
export async function writeInTree(root: string, file: string, content: string): Promise<void> {
  const handle = await open(await checkedPath(root, file), constants.O_WRONLY | constants.O_TRUNC | constants.O_NOFOLLOW);
  try {
    await handle.writeFile(content);
  } finally {
    await handle.close();
  }
}
