/**
 * Local or remote: on a local filesystem a metadata call takes microseconds, on a network or FUSE filesystem
 * it is a round trip. The crawl and the workers choose how they make their calls from this.
 */
import { statfsSync } from "node:fs";

/** statfs magic numbers of filesystems where a metadata call is a round trip to another machine or process. */
const REMOTE_FS = new Set([
  0x6969, // NFS (EFS too)
  0x65735546, // FUSE (yas3fs, sshfs, s3fs...)
  0xff534d42, // CIFS
  0xfe534d42, // SMB2
  0x517b, // SMB
  0x00c36400, // Ceph
  0x0bd00bd0, // Lustre
  0x01021997, // 9p
  0x5346414f, // AFS
  0x47504653, // GPFS
  0x19830326, // BeeGFS
  0x01161970, // GFS2
  0x7461636f, // OCFS2
]);

/** Whether `dir` is on a network or FUSE filesystem; a path that cannot be looked at counts as remote. */
export function isRemoteFs(dir: string): boolean {
  try {
    return REMOTE_FS.has(statfsSync(dir).type);
  } catch {
    return true;
  }
}
