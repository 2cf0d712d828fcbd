//! Many small files opened and read in a few system calls (Linux
//! io_uring), for an IMAP FETCH of many message bodies or a SEARCH of
//! their text.
//!
//! A plain open, read and close of each file costs three system calls,
//! and on machines with the current CPU mitigations the entry and exit
//! of each one cost about as much as the work inside. Here a batch of
//! files is submitted at once: for each, an `openat` into a slot of the
//! ring's own file table (a direct descriptor: no entry in the process's
//! descriptor table, no `close`), linked to a `read` of the size the
//! caller expects. A later open into the same slot drops the file that
//! was there; dropping the ring drops the rest.
//!
//! Where io_uring is not there (older kernels, a seccomp filter that
//! forbids it, `kernel.io_uring_disabled`), [`Batch::new`] fails and the
//! caller reads the plain way.

// This module is the one place that hands memory to the kernel for it to
// fill after the call returns: each `unsafe` below says why it is sound.
#![allow(unsafe_code)]

use std::ffi::CStr;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd};

use io_uring::{IoUring, opcode, squeue, types};

/// At most this many files are in flight at once (slots of the ring's
/// file table; two submission entries each).
pub const SLOTS: usize = 64;

/// One file to read: `name` relative to `dir`, `size` octets expected.
pub struct Want<'a> {
    pub dir: BorrowedFd<'a>,
    pub name: &'a CStr,
    pub size: u64,
}

/// Why a file was not read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// The open failed with this `errno`.
    Open(i32),
    /// The read failed with this `errno`, or gave this many octets
    /// instead of the size expected.
    Read(i32),
    Short(usize),
}

/// A ring to read files with; one thread's.
pub struct Batch {
    ring: IoUring,
}

impl Batch {
    /// A ring with [`SLOTS`] file slots; an error where io_uring or
    /// direct descriptors (Linux 5.19 and later) are not available.
    pub fn new() -> io::Result<Batch> {
        let ring = IoUring::new(2 * SLOTS as u32)?;
        ring.submitter().register_files_sparse(SLOTS as u32)?;
        Ok(Batch { ring })
    }

    /// Opens each file of `wanted` with `flags` (`O_RDONLY` and more;
    /// not `O_CLOEXEC`, which direct descriptors refuse) and reads its
    /// `size` octets (a longer file is cut there): one result per file,
    /// in order. An `Err` is the ring failing as a whole: the caller is
    /// to drop this `Batch` and read the plain way.
    pub fn read(&mut self, wanted: &[Want], flags: i32) -> io::Result<Vec<Result<Vec<u8>, Miss>>> {
        let mut out = Vec::with_capacity(wanted.len());
        for group in wanted.chunks(SLOTS) {
            self.read_group(group, flags, &mut out)?;
        }
        Ok(out)
    }

    fn read_group(
        &mut self,
        group: &[Want],
        flags: i32,
        out: &mut Vec<Result<Vec<u8>, Miss>>,
    ) -> io::Result<()> {
        // Everything that can fail before the kernel holds a buffer.
        debug_assert!(group.len() <= SLOTS);
        let sizes = group
            .iter()
            .map(|w| {
                u32::try_from(w.size)
                    .ok()
                    .filter(|&s| usize::try_from(s).is_ok())
            })
            .collect::<Option<Vec<u32>>>()
            .ok_or_else(|| io::Error::other("file too big for one read"))?;
        let slots = (0..group.len() as u32)
            .map(types::DestinationSlot::try_from_slot_target)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|i| io::Error::other(format!("no io_uring file slot {i}")))?;
        let mut bufs: Vec<Vec<u8>> = sizes
            .iter()
            .map(|&s| Vec::with_capacity(s as usize))
            .collect();
        let mut results: Vec<Result<usize, Miss>> = vec![Err(Miss::Short(0)); group.len()];
        let mut pending = 0;
        let mut pushed = Ok(());
        {
            let mut sq = self.ring.submission();
            for (i, (w, buf)) in group.iter().zip(bufs.iter_mut()).enumerate() {
                let open = opcode::OpenAt::new(types::Fd(w.dir.as_raw_fd()), w.name.as_ptr())
                    .flags(flags)
                    .file_index(Some(slots[i]))
                    .build()
                    .flags(squeue::Flags::IO_LINK)
                    .user_data((i as u64) << 1);
                let read = opcode::Read::new(types::Fixed(i as u32), buf.as_mut_ptr(), sizes[i])
                    .build()
                    .user_data(((i as u64) << 1) | 1);
                // SAFETY: the open's path (`w.name`, borrowed for the whole
                // call) is copied by the kernel when it takes the entry;
                // the read's buffer (`bufs[i]`, at least `sizes[i]` octets
                // of capacity, on the heap, not freed or moved until every
                // entry of the group has completed) outlives the request:
                // this function waits below for the completion of each
                // entry it pushed, and where it cannot, it leaks the
                // buffers instead of freeing them. The queue has room for
                // two entries per slot and is empty between groups.
                if unsafe { sq.push(&open).and_then(|()| sq.push(&read)) }.is_err() {
                    pushed = Err(io::Error::other("io_uring queue full"));
                    break;
                }
                pending += 2;
            }
        }
        if let Err(e) = pushed {
            // Entries in the queue point into the buffers: they must never
            // be freed (the caller drops the ring).
            std::mem::forget(bufs);
            return Err(e);
        }
        while pending > 0 {
            match self.ring.submit_and_wait(1) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // Reads may still be in flight: as above.
                    std::mem::forget(bufs);
                    return Err(e);
                }
            }
            for cqe in self.ring.completion() {
                pending -= 1;
                let i = (cqe.user_data() >> 1) as usize;
                let res = cqe.result();
                if cqe.user_data() & 1 == 0 {
                    if res < 0 {
                        results[i] = Err(Miss::Open(-res));
                    }
                } else if !matches!(results[i], Err(Miss::Open(_))) {
                    results[i] = match res {
                        r if r < 0 => Err(Miss::Read(-r)),
                        r => Ok(r as usize),
                    };
                }
            }
        }
        for ((mut buf, r), size) in bufs.into_iter().zip(results).zip(sizes) {
            out.push(match r {
                Ok(n) if n == size as usize => {
                    // SAFETY: the kernel wrote `n` octets at the start of
                    // the buffer (the read's result), and the buffer has
                    // room for `size` octets.
                    unsafe { buf.set_len(n) };
                    Ok(buf)
                }
                Ok(n) => Err(Miss::Short(n)),
                Err(m) => Err(m),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;
    use std::fs::File;

    #[test]
    fn reads_many_files_and_says_what_is_missing_or_short() {
        let Ok(mut batch) = Batch::new() else {
            eprintln!("io_uring not available here: nothing to test");
            return;
        };
        let dir = tempfile::tempdir().unwrap();
        let n = SLOTS * 2 + 5; // more than one group, and the slots reused
        for i in 0..n {
            std::fs::write(dir.path().join(format!("m{i}")), format!("message {i}\n")).unwrap();
        }
        let d = File::open(dir.path()).unwrap();
        let names: Vec<CString> = (0..n + 1)
            .map(|i| CString::new(format!("m{i}")).unwrap())
            .collect();
        let mut wanted: Vec<Want> = names
            .iter()
            .enumerate()
            .map(|(i, name)| Want {
                dir: std::os::fd::AsFd::as_fd(&d),
                name,
                size: format!("message {i}\n").len() as u64,
            })
            .collect();
        wanted[3].size += 1; // the file is shorter than expected
        wanted[4].size -= 1; // longer: cut at the size
        let got = batch.read(&wanted, nix::libc::O_RDONLY).unwrap();
        assert_eq!(got.len(), n + 1);
        for (i, r) in got.iter().enumerate() {
            match i {
                3 => assert_eq!(r, &Err(Miss::Short(10))),
                4 => assert_eq!(r.as_deref().unwrap(), b"message 4"),
                _ if i == n => assert_eq!(r, &Err(Miss::Open(nix::libc::ENOENT))),
                _ => assert_eq!(r.as_deref().unwrap(), format!("message {i}\n").as_bytes()),
            }
        }
        // The ring goes on after the misses.
        let again = batch.read(&wanted[..2], nix::libc::O_RDONLY).unwrap();
        assert_eq!(again[1].as_deref().unwrap(), b"message 1\n");
    }
}
