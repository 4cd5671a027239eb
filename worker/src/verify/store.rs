//! verify's topic side under a memory budget: the records of a table as *events*, resolved per
//! key into the state a Primary Key table holds, with per-key order checks, and compared with
//! the source by key-hash range.
//!
//! ```text
//!  read topics ──events──► spool (memory; appended to one file per table when the
//!                          buffered events of all tables exceed the budget)
//!  resolve      spool ≤ budget/2: load, sort by (key, read order), replay per key
//!               spool > budget/2: split by hash(key, level) into FANOUT child files, recurse
//!               → a tree of key-hash ranges; a resolved leaf stays in memory while the held
//!                 total is within budget/2, else it is written to a state file with a
//!                 digest (Σ h(key, row hash))
//!  source rows  routed down the tree: memory leaf → compared at once;
//!               disk leaf → digest updated, (key, row hash) appended to the leaf's source file
//!  finish       disk leaf whose digests and row counts agree → equal, never loaded again;
//!               otherwise its state file is loaded and its source file streamed past it
//! ```
//!
//! # Per-key order
//!
//! A record's *position* comes from pgseam's headers: streamed records `(commit_lsn, seq)`,
//! snapshot rows `(consistent point, seq)` before any streamed record at the same LSN. In the
//! topic pgseam writes, positions grow strictly within a partition, except for the recognisable
//! duplicates of DESIGN.md §2 (an ordered suffix replayed after a crash). Per key and partition,
//! in the partition's order:
//! - a record at a position already applied for the key, with the same change (op and row) is a
//!   **duplicate** (allowed);
//! - any other record at a position before the newest one applied for the key is **out of
//!   order**;
//! - a key whose last record is not its newest position (a duplicate of an older change came
//!   last, and was not followed by the rest of the replay) **ends behind**: the sink holds an
//!   older version of the row.
//!
//! Out-of-order records and keys that end behind are order violations: the table is reported
//! as different. Records without position headers (written by Debezium before a takeover) are
//! applied in the order read and not checked. Tables without a key have no per-key order; for
//! them a record at or before its partition's newest position is counted as a duplicate.
//!
//! TRUNCATE (`op=t`) clears every change before it: by position when both carry one, by read
//! order otherwise — so the result does not depend on how the partitions' reads interleave.
//!
//! # Memory
//!
//! The budget (`--memory-budget`) is shared so that verify's own state stays within it in every
//! phase, by its accounting: while reading, the buffered events (≤ budget); while resolving,
//! the one range loaded (≤ budget/2: a range is split until its events fit, down to
//! [`MAX_LEVEL`] levels, `FANOUT`^`MAX_LEVEL` ranges; only one key with more events than that
//! can exceed it) and the resolved ranges held (≤ budget/2); while comparing, the held ranges
//! and the source rows buffered for ranges on disk (≤ budget/4); at the end, the held ranges and
//! one range on disk loaded again. Growth slack of vectors and hash maps can make the heap up
//! to about twice the accounted bytes. Not counted: the consumer's prefetch, which verify sets
//! to budget/64 (1 to 16 MiB; librdkafka holds 10-20 times that), and the snapshot engine's
//! buffers while the source is read. Each event costs its key's length plus
//! [`ENTRY_OVERHEAD`] (128) bytes in this accounting. Disk use: every event of the topics once (the
//! spool, re-split per level) plus every source row's key and hash, in a temporary directory
//! removed at the end.

use std::collections::{BTreeSet, HashMap};
use std::fs::{File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context};
use pgseam_model::Lsn;

/// Children of a range that is split.
pub(super) const FANOUT: usize = 16;
/// Splits stop at this depth (`FANOUT^MAX_LEVEL` ranges).
pub(super) const MAX_LEVEL: u32 = 6;
/// Bytes an event or a row costs beyond its key, in the budget's accounting: an [`Event`] is
/// 96 bytes on 64-bit targets, plus the key's heap block and the allocator's share (a unit test
/// keeps this above the struct sizes).
pub(super) const ENTRY_OVERHEAD: usize = 128;

/// Where a record sits in the change history (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) struct Pos {
    pub lsn: Lsn,
    /// false: a snapshot row (before every streamed record at the same LSN).
    pub stream: bool,
    pub seq: u64,
}

/// What one record does to its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Change {
    /// `r`, `c`, `u`: the row (hash of its `after` JSON).
    Row { hash: u64, placeholder: bool },
    /// `d` or a tombstone.
    Delete { tombstone: bool },
    /// Tables without a key: one more (+1) or one less (-1) of the row whose hash is the key.
    Count(i64),
}

impl Change {
    /// What makes two records at one position the same change.
    fn content(self) -> (u8, u64) {
        match self {
            Change::Row { hash, .. } => (0, hash),
            Change::Delete { tombstone } => (1, u64::from(tombstone)),
            Change::Count(n) => (2, n as u64),
        }
    }
}

/// One record of a table's topic, as verify keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Event {
    /// The record key's JSON; for tables without a key, the row hash in hex.
    pub key: String,
    pub partition: i32,
    /// Order in which verify read the record (all partitions of all topics).
    pub read_seq: u64,
    pub pos: Option<Pos>,
    pub change: Change,
}

impl Event {
    pub(super) fn cost(&self) -> usize {
        self.key.len() + ENTRY_OVERHEAD
    }

    /// One line: `read_seq partition lsn stream seq kind a b\tkey` (`-` for no position).
    /// Keys are compact JSON or hex, so they hold no tab or newline.
    fn write(&self, out: &mut impl Write) -> std::io::Result<()> {
        write!(out, "{} {} ", self.read_seq, self.partition)?;
        match self.pos {
            Some(p) => write!(out, "{} {} {} ", p.lsn.0, u8::from(p.stream), p.seq)?,
            None => write!(out, "- - - ")?,
        }
        match self.change {
            Change::Row { hash, placeholder } => write!(out, "R {hash} {}", u8::from(placeholder))?,
            Change::Delete { tombstone } => write!(out, "D {} 0", u8::from(tombstone))?,
            Change::Count(n) => write!(out, "N {n} 0")?,
        }
        writeln!(out, "\t{}", self.key)
    }

    fn parse(line: &str) -> anyhow::Result<Event> {
        let bad = || anyhow!("verify's spill file has a malformed event line: {line:?}");
        let (fields, key) = line.split_once('\t').ok_or_else(bad)?;
        let f: Vec<&str> = fields.split(' ').collect();
        if f.len() != 8 {
            return Err(bad());
        }
        let num = |s: &str| s.parse::<u64>().map_err(|_| bad());
        let pos = if f[2] == "-" {
            None
        } else {
            Some(Pos {
                lsn: Lsn(num(f[2])?),
                stream: f[3] == "1",
                seq: num(f[4])?,
            })
        };
        let change = match f[5] {
            "R" => Change::Row {
                hash: num(f[6])?,
                placeholder: f[7] == "1",
            },
            "D" => Change::Delete {
                tombstone: f[6] == "1",
            },
            "N" => Change::Count(f[6].parse().map_err(|_| bad())?),
            _ => return Err(bad()),
        };
        Ok(Event {
            key: key.to_owned(),
            partition: f[1].parse().map_err(|_| bad())?,
            read_seq: num(f[0])?,
            pos,
            change,
        })
    }
}

/// A TRUNCATE record of the table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Truncate {
    pub pos: Option<Pos>,
    pub read_seq: u64,
}

impl Truncate {
    /// Whether this truncate comes after (and so clears) a change.
    fn clears(&self, pos: Option<Pos>, read_seq: u64) -> bool {
        match (self.pos, pos) {
            (Some(t), Some(p)) => t > p,
            _ => self.read_seq > read_seq,
        }
    }
}

/// The temporary directory of one verify run, created on first use, removed on drop.
pub(super) struct Spill {
    parent: PathBuf,
    dir: Option<tempfile::TempDir>,
    files: u64,
    /// Bytes written to spill files (for the log).
    pub written: u64,
    pub budget: usize,
}

impl Spill {
    pub(super) fn new(parent: PathBuf, budget: usize) -> Spill {
        Spill {
            parent,
            dir: None,
            files: 0,
            written: 0,
            budget: budget.max(1),
        }
    }

    fn new_file(&mut self, what: &str) -> anyhow::Result<PathBuf> {
        if self.dir.is_none() {
            let dir = tempfile::Builder::new()
                .prefix("pgseam-verify-")
                .tempdir_in(&self.parent)
                .with_context(|| {
                    format!(
                        "cannot create verify's spill directory in {}",
                        self.parent.display()
                    )
                })?;
            tracing::info!(dir = %dir.path().display(), budget = self.budget, "memory budget exceeded: spilling to disk");
            self.dir = Some(dir);
        }
        self.files += 1;
        let dir = self.dir.as_ref().map(|d| d.path()).unwrap_or(&self.parent);
        Ok(dir.join(format!("{what}-{}", self.files)))
    }

    pub(super) fn used(&self) -> bool {
        self.dir.is_some()
    }

    /// The events of one range loaded at a time, at most (else it is split).
    fn range_limit(&self) -> usize {
        (self.budget / 2).max(1)
    }

    /// The resolved ranges held in memory, at most.
    fn held_limit(&self) -> usize {
        self.budget / 2
    }

    /// The source rows buffered for ranges on disk, at most.
    pub(super) fn source_limit(&self) -> usize {
        (self.budget / 4).max(1)
    }
}

fn append(path: &Path) -> anyhow::Result<BufWriter<File>> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot write verify's spill file {}", path.display()))?;
    Ok(BufWriter::new(file))
}

fn lines(path: &Path) -> anyhow::Result<impl Iterator<Item = anyhow::Result<String>>> {
    let file = File::open(path)
        .with_context(|| format!("cannot read verify's spill file {}", path.display()))?;
    let shown = path.display().to_string();
    Ok(BufReader::new(file)
        .lines()
        .map(move |l| l.with_context(|| format!("cannot read verify's spill file {shown}"))))
}

/// A table's events: buffered in memory, with what did not fit appended to a file.
#[derive(Debug, Default)]
pub(super) struct Spool {
    events: Vec<Event>,
    /// Budget bytes of `events`.
    pub bytes: usize,
    file: Option<PathBuf>,
    file_bytes: usize,
}

impl Spool {
    pub(super) fn push(&mut self, event: Event) {
        self.bytes += event.cost();
        self.events.push(event);
    }

    fn total(&self) -> usize {
        self.bytes + self.file_bytes
    }

    /// Appends the buffered events to the spool's file.
    pub(super) fn spill(&mut self, spill: &mut Spill, name: &str) -> anyhow::Result<()> {
        if self.events.is_empty() {
            return Ok(());
        }
        let path = match &self.file {
            Some(path) => path.clone(),
            None => {
                let path = spill.new_file(name)?;
                self.file = Some(path.clone());
                path
            }
        };
        let mut out = append(&path)?;
        let before = spill.written;
        // Taken, not drained: the buffer's capacity is released with it.
        for event in std::mem::take(&mut self.events) {
            event
                .write(&mut out)
                .with_context(|| format!("cannot write {}", path.display()))?;
            spill.written += event.cost() as u64;
        }
        out.flush()
            .with_context(|| format!("cannot write {}", path.display()))?;
        self.file_bytes += (spill.written - before) as usize;
        self.bytes = 0;
        Ok(())
    }

    /// Every event, buffered and spilled; the file is removed.
    fn into_events(self) -> anyhow::Result<Vec<Event>> {
        let mut events = Vec::new();
        if let Some(path) = &self.file {
            for line in lines(path)? {
                events.push(Event::parse(&line?)?);
            }
            let _ = std::fs::remove_file(path);
        }
        events.extend(self.events);
        Ok(events)
    }
}

/// The `limit` smallest keys seen: examples that do not depend on the order of processing.
#[derive(Debug, Default, Clone)]
pub(super) struct Examples {
    limit: usize,
    keys: BTreeSet<String>,
}

impl Examples {
    pub(super) fn new(limit: usize) -> Examples {
        Examples {
            limit,
            keys: BTreeSet::new(),
        }
    }

    pub(super) fn push(&mut self, key: &str) {
        if self.limit == 0 {
            return;
        }
        if self.keys.len() >= self.limit {
            match self.keys.last() {
                Some(last) if key.as_bytes() < last.as_bytes() => {}
                _ => return,
            }
        }
        self.keys.insert(key.to_owned());
        if self.keys.len() > self.limit {
            self.keys.pop_last();
        }
    }

    pub(super) fn into_vec(self) -> Vec<String> {
        self.keys.into_iter().collect()
    }
}

/// What resolving and comparing a table found (the report's inputs).
#[derive(Debug)]
pub(super) struct Findings {
    pub topic_rows: u64,
    pub source_rows: u64,
    pub duplicates: u64,
    pub out_of_order: u64,
    pub behind: u64,
    pub missing: u64,
    pub extra: u64,
    pub different: u64,
    pub different_placeholder: u64,
    pub duplicate_examples: Examples,
    pub order_examples: Examples,
    pub missing_examples: Examples,
    pub extra_examples: Examples,
    pub different_examples: Examples,
}

impl Findings {
    pub(super) fn new(examples: usize) -> Findings {
        let e = || Examples::new(examples);
        Findings {
            topic_rows: 0,
            source_rows: 0,
            duplicates: 0,
            out_of_order: 0,
            behind: 0,
            missing: 0,
            extra: 0,
            different: 0,
            different_placeholder: 0,
            duplicate_examples: e(),
            order_examples: e(),
            missing_examples: e(),
            extra_examples: e(),
            different_examples: e(),
        }
    }
}

/// The topic side's state of one key (or, without a key, one row value and its count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Slot {
    pub hash: u64,
    pub placeholder: bool,
    pub count: i64,
}

fn slot_cost(key: &str) -> usize {
    key.len() + ENTRY_OVERHEAD
}

fn hash_of<T: Hash>(value: T) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.hash(&mut hasher);
    hasher.finish()
}

/// The child of a range at `level` (1 = the root's children) a key belongs to.
fn bucket(key: &str, level: u32) -> usize {
    (hash_of((level, key)) % FANOUT as u64) as usize
}

/// A row's share of a range digest: `count` times h(key, row hash). Rows of tables without a
/// key use row hash 0 (their key is the row hash).
fn digest_of(key: &str, hash: u64, count: i64) -> u64 {
    hash_of((key, hash)).wrapping_mul(count as u64)
}

/// The positions applied for one key: a list for the usual few, a map for a busy key.
enum Seen {
    Few(Vec<(i32, Pos, (u8, u64))>),
    Many(HashMap<(i32, Pos), (u8, u64)>),
}

impl Seen {
    fn new(events: usize) -> Seen {
        if events <= 32 {
            Seen::Few(Vec::with_capacity(events))
        } else {
            Seen::Many(HashMap::with_capacity(events))
        }
    }

    fn get(&self, partition: i32, pos: Pos) -> Option<(u8, u64)> {
        match self {
            Seen::Few(list) => list
                .iter()
                .find(|(p, at, _)| *p == partition && *at == pos)
                .map(|&(_, _, c)| c),
            Seen::Many(map) => map.get(&(partition, pos)).copied(),
        }
    }

    fn insert(&mut self, partition: i32, pos: Pos, content: (u8, u64)) {
        match self {
            Seen::Few(list) => list.push((partition, pos, content)),
            Seen::Many(map) => {
                map.insert((partition, pos), content);
            }
        }
    }
}

/// Replays one table's events per key (see the module docs). Returns the key states.
fn resolve_events(
    mut events: Vec<Event>,
    truncates: &[Truncate],
    findings: &mut Findings,
) -> HashMap<String, Slot> {
    events.sort_by(|a, b| a.key.cmp(&b.key).then(a.read_seq.cmp(&b.read_seq)));
    let mut state = HashMap::new();
    let cleared = |e: &Event| truncates.iter().any(|t| t.clears(e.pos, e.read_seq));
    let mut start = 0;
    while start < events.len() {
        let key = &events[start].key;
        let end = start + events[start..].iter().take_while(|e| &e.key == key).count();
        let group = &events[start..end];
        start = end;
        if let Change::Count(_) = group[0].change {
            let count: i64 = group
                .iter()
                .filter(|e| !cleared(e))
                .map(|e| match e.change {
                    Change::Count(n) => n,
                    _ => 0,
                })
                .sum();
            if count != 0 {
                state.insert(
                    key.clone(),
                    Slot {
                        hash: 0,
                        placeholder: false,
                        count,
                    },
                );
            }
            continue;
        }
        // Per partition: positions applied (with their change), the newest, and the last.
        let mut seen = Seen::new(group.len());
        let mut newest: Vec<(i32, Pos)> = Vec::new();
        let mut last: Vec<(i32, Pos)> = Vec::new();
        for event in group {
            let Some(pos) = event.pos else { continue };
            let content = event.change.content();
            let partition = event.partition;
            let newest_here = newest.iter().find(|(p, _)| *p == partition).copied();
            if let Some(applied) = seen.get(partition, pos) {
                if applied == content {
                    findings.duplicates += 1;
                    findings.duplicate_examples.push(key);
                } else {
                    findings.out_of_order += 1;
                    findings.order_examples.push(key);
                }
            } else {
                if newest_here.is_some_and(|(_, n)| pos < n) {
                    findings.out_of_order += 1;
                    findings.order_examples.push(key);
                }
                seen.insert(partition, pos, content);
            }
            match newest.iter_mut().find(|(p, _)| *p == partition) {
                Some((_, n)) => *n = (*n).max(pos),
                None => newest.push((partition, pos)),
            }
            match last.iter_mut().find(|(p, _)| *p == partition) {
                Some((_, l)) => *l = pos,
                None => last.push((partition, pos)),
            }
        }
        if last
            .iter()
            .any(|(p, l)| newest.iter().any(|(q, n)| p == q && l < n))
        {
            findings.behind += 1;
            findings.order_examples.push(key);
        }
        // The key's state: its last record, unless a truncate came after it.
        if let Some(final_event) = group.last() {
            if let Change::Row { hash, placeholder } = final_event.change {
                if !cleared(final_event) {
                    state.insert(
                        key.clone(),
                        Slot {
                            hash,
                            placeholder,
                            count: 1,
                        },
                    );
                }
            }
        }
    }
    state
}

/// A resolved range written to disk.
#[derive(Debug)]
struct DiskRange {
    state: PathBuf,
    topic_digest: u64,
    topic_count: u64,
    source: Vec<(String, u64)>,
    source_bytes: usize,
    source_file: Option<PathBuf>,
    source_digest: u64,
    source_count: u64,
}

/// One key-hash range of a table's topic side.
#[derive(Debug)]
enum Range {
    /// Resolved and held in memory: source rows are compared as they arrive.
    Memory(HashMap<String, Slot>),
    /// Resolved and written to disk, with its digest; source rows are kept for the end.
    Disk(Box<DiskRange>),
    /// Too large for the budget: split by `bucket(key, level + 1)`.
    Split(Vec<Range>),
}

/// One table's comparison: topic side resolved into ranges, source rows routed into them.
#[derive(Debug)]
pub(super) struct TableCompare {
    root: Range,
    pub keyed: bool,
    pub findings: Findings,
    name: String,
}

impl TableCompare {
    /// Resolves a table's spool into ranges. `held` is the memory the resolved ranges of all
    /// tables hold so far.
    pub(super) fn resolve(
        name: &str,
        spool: Spool,
        truncates: &[Truncate],
        keyed_hint: bool,
        examples: usize,
        spill: &mut Spill,
        held: &mut usize,
    ) -> anyhow::Result<TableCompare> {
        let mut findings = Findings::new(examples);
        let root = resolve_range(name, spool, truncates, 0, spill, held, &mut findings)?;
        Ok(TableCompare {
            root,
            keyed: keyed_hint,
            findings,
            name: name.to_owned(),
        })
    }

    /// One source row (key JSON, or none for a table without a key).
    /// Returns the budget bytes it added to the source buffers.
    pub(super) fn source_row(&mut self, key: Option<String>, hash: u64) -> usize {
        self.findings.source_rows += 1;
        let keyed = key.is_some();
        self.keyed = keyed;
        let key = key.unwrap_or_else(|| format!("{hash:016x}"));
        let mut range = &mut self.root;
        let mut level = 0;
        loop {
            match range {
                Range::Split(children) => {
                    level += 1;
                    range = &mut children[bucket(&key, level)];
                }
                Range::Memory(map) => {
                    compare_row(map, &key, keyed, hash, &mut self.findings);
                    return 0;
                }
                Range::Disk(disk) => {
                    let digest_hash = if keyed { hash } else { 0 };
                    disk.source_digest =
                        disk.source_digest
                            .wrapping_add(digest_of(&key, digest_hash, 1));
                    disk.source_count += 1;
                    let cost = slot_cost(&key);
                    disk.source_bytes += cost;
                    disk.source.push((key, hash));
                    return cost;
                }
            }
        }
    }

    /// Appends the buffered source rows of the disk ranges to their files.
    pub(super) fn spill_source(&mut self, spill: &mut Spill) -> anyhow::Result<()> {
        let name = self.name.clone();
        spill_source(&mut self.root, &name, spill)
    }

    /// Compares what is left and returns the findings.
    pub(super) fn finish(mut self) -> anyhow::Result<Findings> {
        let keyed = self.keyed;
        finish_range(self.root, keyed, &mut self.findings)?;
        Ok(self.findings)
    }
}

fn resolve_range(
    name: &str,
    spool: Spool,
    truncates: &[Truncate],
    level: u32,
    spill: &mut Spill,
    held: &mut usize,
    findings: &mut Findings,
) -> anyhow::Result<Range> {
    if spool.total() > spill.range_limit() && level < MAX_LEVEL {
        // Split: stream the events into FANOUT child files.
        let mut children: Vec<Spool> = (0..FANOUT).map(|_| Spool::default()).collect();
        let mut writers: Vec<Option<BufWriter<File>>> = (0..FANOUT).map(|_| None).collect();
        let mut route = |event: Event, spill: &mut Spill| -> anyhow::Result<()> {
            let b = bucket(&event.key, level + 1);
            if writers[b].is_none() {
                let path = spill.new_file(&format!("{name}-events-l{}", level + 1))?;
                writers[b] = Some(append(&path)?);
                children[b].file = Some(path);
            }
            if let Some(out) = writers[b].as_mut() {
                event
                    .write(out)
                    .context("cannot write verify's spill file")?;
            }
            children[b].file_bytes += event.cost();
            spill.written += event.cost() as u64;
            Ok(())
        };
        if let Some(path) = &spool.file {
            for line in lines(path)? {
                route(Event::parse(&line?)?, spill)?;
            }
            let _ = std::fs::remove_file(path);
        }
        for event in spool.events {
            route(event, spill)?;
        }
        for out in writers.iter_mut().flatten() {
            out.flush().context("cannot write verify's spill file")?;
        }
        drop(writers);
        let mut ranges = Vec::with_capacity(FANOUT);
        for child in children {
            ranges.push(resolve_range(
                name,
                child,
                truncates,
                level + 1,
                spill,
                held,
                findings,
            )?);
        }
        return Ok(Range::Split(ranges));
    }
    let events = spool.into_events()?;
    let state = resolve_events(events, truncates, findings);
    findings.topic_rows += state.values().map(|s| s.count.max(0) as u64).sum::<u64>();
    let bytes: usize = state.keys().map(|k| slot_cost(k)).sum();
    if *held + bytes <= spill.held_limit() {
        *held += bytes;
        return Ok(Range::Memory(state));
    }
    let path = spill.new_file(&format!("{name}-state"))?;
    let mut out = append(&path)?;
    let mut digest: u64 = 0;
    let mut count: u64 = 0;
    for (key, slot) in &state {
        digest = digest.wrapping_add(digest_of(key, slot.hash, slot.count));
        count += slot.count.max(0) as u64;
        writeln!(
            out,
            "{} {} {}\t{key}",
            slot.hash,
            u8::from(slot.placeholder),
            slot.count
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
        spill.written += slot_cost(key) as u64;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(Range::Disk(Box::new(DiskRange {
        state: path,
        topic_digest: digest,
        topic_count: count,
        source: Vec::new(),
        source_bytes: 0,
        source_file: None,
        source_digest: 0,
        source_count: 0,
    })))
}

fn spill_source(range: &mut Range, name: &str, spill: &mut Spill) -> anyhow::Result<()> {
    match range {
        Range::Memory(_) => Ok(()),
        Range::Split(children) => children
            .iter_mut()
            .try_for_each(|c| spill_source(c, name, spill)),
        Range::Disk(disk) => {
            if disk.source.is_empty() {
                return Ok(());
            }
            let path = match &disk.source_file {
                Some(path) => path.clone(),
                None => {
                    let path = spill.new_file(&format!("{name}-source"))?;
                    disk.source_file = Some(path.clone());
                    path
                }
            };
            let mut out = append(&path)?;
            for (key, hash) in std::mem::take(&mut disk.source) {
                writeln!(out, "{hash}\t{key}")
                    .with_context(|| format!("cannot write {}", path.display()))?;
                spill.written += slot_cost(&key) as u64;
            }
            out.flush()
                .with_context(|| format!("cannot write {}", path.display()))?;
            disk.source_bytes = 0;
            Ok(())
        }
    }
}

fn compare_row(
    map: &mut HashMap<String, Slot>,
    key: &str,
    keyed: bool,
    hash: u64,
    findings: &mut Findings,
) {
    if !keyed {
        let slot = map.entry(key.to_owned()).or_insert(Slot {
            hash: 0,
            placeholder: false,
            count: 0,
        });
        slot.count -= 1;
        if slot.count == 0 {
            map.remove(key);
        }
        return;
    }
    match map.remove(key) {
        None => {
            findings.missing += 1;
            findings.missing_examples.push(key);
        }
        Some(topic) if topic.hash != hash => {
            findings.different += 1;
            if topic.placeholder {
                findings.different_placeholder += 1;
            }
            findings.different_examples.push(key);
        }
        Some(_) => {}
    }
}

/// Counts the topic rows of a resolved state and what is left of it after the comparison.
fn finish_map(map: HashMap<String, Slot>, keyed: bool, findings: &mut Findings) {
    for (key, slot) in map {
        if keyed || slot.count > 0 {
            findings.extra += slot.count.max(1) as u64;
            if keyed {
                findings.extra_examples.push(&key);
            }
        } else {
            findings.missing += slot.count.unsigned_abs();
        }
    }
}

fn finish_range(range: Range, keyed: bool, findings: &mut Findings) -> anyhow::Result<()> {
    match range {
        Range::Memory(map) => {
            finish_map(map, keyed, findings);
            Ok(())
        }
        Range::Split(children) => children
            .into_iter()
            .try_for_each(|c| finish_range(c, keyed, findings)),
        Range::Disk(disk) => {
            let disk = *disk;
            if disk.topic_digest == disk.source_digest && disk.topic_count == disk.source_count {
                // The digests agree: equal without loading the range.
                let _ = std::fs::remove_file(&disk.state);
                if let Some(path) = &disk.source_file {
                    let _ = std::fs::remove_file(path);
                }
                return Ok(());
            }
            let mut map = HashMap::new();
            for line in lines(&disk.state)? {
                let line = line?;
                let bad = || anyhow!("verify's spill file has a malformed state line: {line:?}");
                let (fields, key) = line.split_once('\t').ok_or_else(bad)?;
                let f: Vec<&str> = fields.split(' ').collect();
                if f.len() != 3 {
                    return Err(bad());
                }
                map.insert(
                    key.to_owned(),
                    Slot {
                        hash: f[0].parse().map_err(|_| bad())?,
                        placeholder: f[1] == "1",
                        count: f[2].parse().map_err(|_| bad())?,
                    },
                );
            }
            let _ = std::fs::remove_file(&disk.state);
            if let Some(path) = &disk.source_file {
                for line in lines(path)? {
                    let line = line?;
                    let bad =
                        || anyhow!("verify's spill file has a malformed source line: {line:?}");
                    let (hash, key) = line.split_once('\t').ok_or_else(bad)?;
                    let hash: u64 = hash.parse().map_err(|_| bad())?;
                    compare_row(&mut map, key, keyed, hash, findings);
                }
                let _ = std::fs::remove_file(path);
            }
            for (key, hash) in &disk.source {
                compare_row(&mut map, key, keyed, *hash, findings);
            }
            finish_map(map, keyed, findings);
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_accounting_covers_the_structs() {
        let event = std::mem::size_of::<Event>();
        let slot = std::mem::size_of::<(String, Slot)>();
        assert!(event + 16 <= ENTRY_OVERHEAD, "Event is {event} bytes");
        assert!(slot + 32 <= ENTRY_OVERHEAD, "a map entry is {slot} bytes");
    }

    #[test]
    fn events_round_trip_through_their_line_form() {
        let events = [
            Event {
                key: r#"{"id":1,"s":"a\tb"}"#.to_owned(),
                partition: 3,
                read_seq: 42,
                pos: Some(Pos {
                    lsn: Lsn(0x1_0000_0010),
                    stream: true,
                    seq: 7,
                }),
                change: Change::Row {
                    hash: u64::MAX,
                    placeholder: true,
                },
            },
            Event {
                key: "00000000000000ff".to_owned(),
                partition: 0,
                read_seq: 1,
                pos: None,
                change: Change::Count(-1),
            },
            Event {
                key: r#"{"id":2}"#.to_owned(),
                partition: 1,
                read_seq: 2,
                pos: Some(Pos {
                    lsn: Lsn(5),
                    stream: false,
                    seq: 0,
                }),
                change: Change::Delete { tombstone: true },
            },
        ];
        for event in events {
            let mut line = Vec::new();
            event.write(&mut line).unwrap();
            let text = String::from_utf8(line).unwrap();
            assert_eq!(Event::parse(text.trim_end_matches('\n')).unwrap(), event);
        }
        assert!(Event::parse("1 2 - - - X 0 0\t{}").is_err());
        assert!(Event::parse("garbage").is_err());
    }
}
