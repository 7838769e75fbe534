//! The conversations pass: `conversations`, their `messages` and their `contacts`
//! (REFERENCE §7.1-7.2). Drift lists conversations newest `updatedAt` first; messages and
//! contacts only exist per conversation, so one pass reads all three.
//!
//! State (one key per selection of the three streams, e.g. `conversations+messages+contacts`,
//! so a run with another selection does not skip what this one never read):
//! the watermark with its overlap window, the contactIds fetched by earlier passes, and the
//! pass in progress — the first page not complete (a [`PageCursor`]), the conversations of
//! it and of the pages listed after it (at most [`MAX_OPEN_PAGES`] in all) whose records are
//! committed, the contacts fetched in the pass. A checkpoint follows the records of finished
//! conversations, so a killed run resumes at that page and skips what was committed.
//!
//! Pages overlap: the next page is listed, and its conversations fetched, while the last
//! fetches of the one before it are still in flight, so no fetch slot waits for a page to end.

use crate::fail::{conclude, quarantine, raw_i64, to_record, Fail, StreamMeter};
use crate::names::{CONTACTS, CONVERSATIONS, MESSAGES};
use crate::streams::compact;
use crate::streams::full_refresh::content_hash;
use crate::watermark::Watermark;
use crate::Ctx;
use drift_client::{Client, Conversation, ListConversations, Page, PageCursor, Unfit};
use futures::stream::FuturesUnordered;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};
use sync_core::{Message, RunError, StreamStatus, SyncMode};

/// Which of the three streams are selected, and the mode.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Family {
    conversations: bool,
    messages: bool,
    contacts: bool,
    /// Read each conversation in full for its participants, tags and playbook.
    details: bool,
    mode: SyncMode,
}

impl Family {
    pub(crate) fn from_selection(selected: &[(String, SyncMode)], details: bool) -> Option<Family> {
        let has = |n: &str| selected.iter().find(|(s, _)| s == n).map(|(_, m)| *m);
        let (cv, ms, ct) = (has(CONVERSATIONS), has(MESSAGES), has(CONTACTS));
        let mode = cv.or(ms).or(ct)?;
        Some(Family {
            conversations: cv.is_some(),
            messages: ms.is_some(),
            contacts: ct.is_some(),
            details: details && cv.is_some(),
            mode,
        })
    }

    fn streams(&self) -> Vec<&'static str> {
        [
            (self.conversations, CONVERSATIONS),
            (self.messages, MESSAGES),
            (self.contacts, CONTACTS),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    fn state_key(&self) -> String {
        self.streams().join("+")
    }
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct FamilyState {
    #[serde(flatten)]
    wm: Watermark,
    /// The pass in progress, if a run stopped before finishing it.
    #[serde(default)]
    pass: Option<Pass>,
    /// The last contactId re-checked by the rotation of known contacts (see
    /// [`Runner::recheck_contacts`]); the next run goes on after it.
    #[serde(default)]
    recheck_after: Option<i64>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct Pass {
    mode: SyncMode,
    /// Read conversations down to this `updatedAt` (None: all).
    floor: Option<i64>,
    /// The first page not complete (None: the first page).
    page: Option<PageCursor>,
    /// Conversations of `page` and of the open pages after it whose records are committed.
    #[serde(default)]
    done: BTreeSet<i64>,
    /// Conversation id -> `updatedAt` seen in this pass, near the top (the next overlap window).
    #[serde(default)]
    seen: BTreeMap<String, i64>,
    /// ContactIds fetched in this pass (stored compactly, see [`compact`]).
    #[serde(default, with = "compact::ids")]
    contacts_done: BTreeSet<i64>,
    /// ContactIds that answered 404 in this pass (tombstoned; dropped from the known set).
    #[serde(default, with = "compact::ids")]
    contacts_gone: BTreeSet<i64>,
    /// ContactId -> fingerprint of the contacts read in this pass that are new or changed
    /// (written to the sink; merged into the known contacts when the pass ends; stored
    /// compactly, see [`compact`]).
    #[serde(default, with = "compact::id_map")]
    contacts_changed: BTreeMap<i64, i64>,
}

impl Pass {
    fn new(mode: SyncMode, floor: Option<i64>) -> Pass {
        Pass {
            mode,
            floor,
            page: None,
            done: BTreeSet::new(),
            seen: BTreeMap::new(),
            contacts_done: BTreeSet::new(),
            contacts_gone: BTreeSet::new(),
            contacts_changed: BTreeMap::new(),
        }
    }
}

/// One conversation whose records must be read.
struct Work {
    /// Its record, or why it does not fit (it is quarantined; its messages and contact are
    /// still read when its `id` and `contactId` can be read).
    record: Result<Map<String, Value>, Box<Unfit>>,
    id: i64,
    contact: Option<i64>,
    /// Emit only messages created at or after this time (None: all).
    messages_since: Option<i64>,
}

/// A conversation's messages as read: those that fit, and those quarantined.
type MessagesRead = (Vec<Map<String, Value>>, Vec<Unfit>);

struct Fetched {
    work: Work,
    messages: Option<MessagesRead>,
    contact: Option<ContactRead>,
    /// The conversation as `GET /conversations/{id}` gives it (participants, tags and
    /// playbook, which list rows lack), when it was read and fits.
    details: Option<Map<String, Value>>,
}

/// What reading one contact gave.
enum ContactRead {
    /// The contact's record.
    Found(Map<String, Value>),
    /// Drift answered 404: the contact was deleted (a tombstone).
    Gone,
    /// The contact does not fit its model: quarantined.
    Unfit(Box<Unfit>),
}

/// Run the pass and report the end of its streams.
pub(crate) async fn run(ctx: &Ctx, family: &Family) -> Result<(), RunError> {
    for s in family.streams() {
        ctx.out.status(s, StreamStatus::Started).await?;
    }
    let mut runner = Runner::new(ctx, family);
    let mut result = runner.run().await;
    if matches!(result, Err(Fail::Drift(_) | Fail::Other(_))) {
        // Keep the progress of the pass: every conversation in it has its records emitted.
        if let Err(e) = runner.checkpoint().await {
            result = Err(e);
        }
    }
    for meter in &mut runner.meters {
        meter.report(&ctx.out).await?;
    }
    conclude(&ctx.out, &family.streams(), result).await
}

struct Runner<'a> {
    ctx: &'a Ctx,
    family: &'a Family,
    key: String,
    state: FamilyState,
    /// ContactId -> fingerprint of its record, of the contacts fetched by completed passes
    /// (state key [`contacts_key`]); an incremental pass writes a contact it reads again
    /// only when the fingerprint changed. 0: unknown (state of older versions).
    contacts_known: BTreeMap<i64, i64>,
    /// ContactIds claimed by conversations whose fetch is not emitted yet, so a contact in
    /// two pages in flight is read once.
    claimed: HashSet<i64>,
    last_checkpoint: Instant,
    /// Records (conversations, messages, contacts) emitted since the last checkpoint, at
    /// most: a resumed pass sends them again (see [`CHECKPOINT_RECORDS`]).
    since_checkpoint: usize,
    /// Whether an estimate of the conversations was announced (`Message::Expected`).
    announced: bool,
    /// Conversation records emitted (or quarantined) by this run.
    emitted: u64,
    /// Request counters of the selected streams, reported at each checkpoint.
    meters: Vec<StreamMeter>,
    /// The client handles whose requests count for the conversations list (the first
    /// selected stream when conversations are not), the messages and the contacts.
    list_client: Client,
    messages_client: Client,
    contacts_client: Client,
}

impl<'a> Runner<'a> {
    fn new(ctx: &'a Ctx, family: &'a Family) -> Self {
        let key = family.state_key();
        let state: FamilyState = ctx
            .state
            .get(&key)
            .and_then(|v| serde_json::from_value(v.clone()).ok())
            .unwrap_or_default();
        let contacts_known = ctx
            .state
            .get(&contacts_key(&key))
            .and_then(known_contacts)
            .unwrap_or_default();
        let mut meters = Vec::new();
        let mut clients = HashMap::new();
        for stream in family.streams() {
            let (meter, client) = StreamMeter::attach(stream, &ctx.client);
            meters.push(meter);
            clients.insert(stream, client);
        }
        let owner = family.streams().first().copied().unwrap_or(CONVERSATIONS);
        let client_of = |stream: &str| {
            clients
                .get(stream)
                .or_else(|| clients.get(owner))
                .cloned()
                .unwrap_or_else(|| ctx.client.clone())
        };
        Runner {
            ctx,
            family,
            key,
            state,
            contacts_known,
            claimed: HashSet::new(),
            last_checkpoint: Instant::now(),
            since_checkpoint: 0,
            announced: false,
            emitted: 0,
            list_client: client_of(CONVERSATIONS),
            messages_client: client_of(MESSAGES),
            contacts_client: client_of(CONTACTS),
            meters,
        }
    }

    fn start_pass(&mut self) -> bool {
        let overlap = self.ctx.config.overlap_ms;
        let resumable = match (&self.state.pass, self.family.mode) {
            (Some(p), SyncMode::FullRefresh) => p.mode == SyncMode::FullRefresh,
            (Some(_), SyncMode::Incremental) => true,
            (None, _) => false,
        };
        if !resumable {
            let start = self.ctx.config.start_date_ms;
            let floor = match self.family.mode {
                SyncMode::FullRefresh => start,
                SyncMode::Incremental => match self.state.wm.floor(overlap) {
                    Some(wm) => Some(start.map_or(wm, |s| wm.max(s))),
                    None => start,
                },
            };
            self.state.pass = Some(Pass::new(self.family.mode, floor));
        }
        resumable
    }

    fn pass(&mut self) -> Result<&mut Pass, Fail> {
        self.state
            .pass
            .as_mut()
            .ok_or_else(|| Fail::Other("internal: no pass in progress".into()))
    }

    /// Read the pass: list pages, and the messages and contact of each conversation, with
    /// up to the client's concurrency of conversations in flight. The next page is listed
    /// while the current one's fetches run, and its conversations start as soon as slots are
    /// free, so the end of a page leaves no slot idle (DESIGN.md §4: use the whole budget).
    async fn run(&mut self) -> Result<(), Fail> {
        let resumed = self.start_pass();
        let pass = self.pass()?.clone();
        if pass.mode == SyncMode::FullRefresh && !resumed && self.family.conversations {
            self.announce_total().await?;
        }
        let params = ListConversations {
            limit: Some(self.ctx.config.page_size),
            start: pass.page.clone(),
            ..Default::default()
        };
        let pages = self.list_client.conversations(params);
        futures::pin_mut!(pages);
        let concurrency = self.concurrency();
        let (msg_client, contact_client) =
            (self.messages_client.clone(), self.contacts_client.clone());
        let messages = self.family.messages;
        let mut window = Window::default();
        let mut in_flight = FuturesUnordered::new();
        // Pages may still come: false after the floor, the end of the list or a page error.
        // Without a next cursor the stream is still polled once: a refused next link
        // (another host) or `more: true` without a cursor arrives as an error after the
        // page, and must fail the pass rather than end it quietly.
        let mut listing = true;
        let mut page_error = None;
        loop {
            while in_flight.len() < concurrency {
                let Some((seq, work)) = window.queue.pop_front() else {
                    break;
                };
                let details = self.family.details;
                let fetch = fetch(
                    msg_client.clone(),
                    contact_client.clone(),
                    messages,
                    details,
                    work,
                );
                in_flight.push(async move { (seq, fetch.await) });
            }
            let want_page = listing && window.wants_page(concurrency);
            tokio::select! {
                Some((seq, fetched)) = in_flight.next(), if !in_flight.is_empty() => {
                    self.emit(fetched?).await?;
                    self.conversation_done(&mut window, seq).await?;
                }
                item = pages.next(), if want_page => {
                    match item {
                        Some(Ok(page)) => {
                            let (work, keyless, reached_floor) = self.plan(&page)?;
                            for unfit in &keyless {
                                if self.family.conversations {
                                    quarantine(&self.ctx.out, CONVERSATIONS, unfit).await?;
                                    self.emitted += 1;
                                }
                            }
                            listing = !reached_floor;
                            let next = page.next.clone().filter(|_| !reached_floor);
                            let ids = work.iter().map(|w| w.id).collect();
                            window.push(work, ids, next);
                            self.advance(&mut window).await?;
                        }
                        Some(Err(e)) => {
                            // Finish what is in flight (the resume point stays at the
                            // first unfinished page), then fail.
                            listing = false;
                            page_error = Some(Fail::from(e));
                        }
                        None => listing = false,
                    }
                }
                else => break,
            }
        }
        if let Some(e) = page_error {
            return Err(e);
        }
        self.recheck_contacts().await?;
        self.extra_contacts().await?;
        self.settle_total().await?;
        self.finish_pass().await
    }

    /// One conversation of page `seq` has its records emitted: move the resume point past
    /// the pages now complete, and checkpoint at most every `checkpoint_interval_ms`.
    async fn conversation_done(&mut self, window: &mut Window, seq: u64) -> Result<(), Fail> {
        window.finished(seq);
        self.advance(window).await?;
        let interval = Duration::from_millis(self.ctx.config.checkpoint_interval_ms);
        if self.last_checkpoint.elapsed() >= interval {
            self.checkpoint().await?;
        }
        Ok(())
    }

    /// Pop the complete pages at the front of `window`; the pass resumes at the first page
    /// not complete, skipping the conversations of it (and of the pages after it) that are
    /// in `done`. Checkpoints when the resume point moved and the last checkpoint is at
    /// least `checkpoint_interval_ms` old or [`CHECKPOINT_RECORDS`] records back: the pass's
    /// state holds every contact read so far, so writing it at each page would cost time
    /// growing with the square of the run.
    async fn advance(&mut self, window: &mut Window) -> Result<(), Fail> {
        let mut moved = false;
        while let Some(page) = window.pop_complete() {
            let Some(next) = page.next else {
                continue; // the last page: the pass ends (finish_pass) instead
            };
            let pass = self.pass()?;
            pass.page = Some(next);
            for id in page.ids {
                pass.done.remove(&id);
            }
            moved = true;
        }
        let interval = Duration::from_millis(self.ctx.config.checkpoint_interval_ms);
        if moved
            && (self.last_checkpoint.elapsed() >= interval
                || self.since_checkpoint >= CHECKPOINT_RECORDS)
        {
            self.checkpoint().await?;
        }
        Ok(())
    }

    /// Announce the number of conversations from `GET /conversations/stats`, an estimate
    /// for progress: Drift counts conversations there by status (OPEN, CLOSED, PENDING), so
    /// the ones a list returns with another status (`bulk_sent`: a playbook message with no
    /// reply) are missing from it. [`Runner::settle_total`] replaces it with the count read.
    async fn announce_total(&mut self) -> Result<(), Fail> {
        let stats = self.list_client.conversation_stats().await;
        let Ok(stats) = stats else {
            return Ok(()); // only used for progress: not worth failing the stream
        };
        let total: i64 = stats
            .conversation_count
            .iter()
            .flat_map(|m| m.values())
            .filter_map(Value::as_i64)
            .sum();
        let msg = Message::Expected {
            stream: CONVERSATIONS.into(),
            records: u64::try_from(total).unwrap_or(0),
        };
        self.ctx.out.send(msg).await?;
        self.announced = true;
        Ok(())
    }

    /// A pass that read every conversation knows the true total: the records read. Sent
    /// when an estimate was announced, so a finished run does not keep the estimate.
    async fn settle_total(&self) -> Result<(), Fail> {
        if self.announced {
            let msg = Message::Expected {
                stream: CONVERSATIONS.into(),
                records: self.emitted,
            };
            self.ctx.out.send(msg).await?;
        }
        Ok(())
    }

    /// Decide which conversations of `page` need reading. Returns them, the records that do
    /// not fit and whose `id` cannot be read (to quarantine: nothing else can be read of
    /// them), and whether the page reached the floor (an incremental pass stops there).
    /// A record that does not fit but whose `id` can be read is planned like the others:
    /// it is quarantined and its messages and contact are read; its `updatedAt`, when it can
    /// be read, moves the cursor past it.
    fn plan(&mut self, page: &Page<Conversation>) -> Result<(Vec<Work>, Vec<Unfit>, bool), Fail> {
        let mut candidates = Vec::with_capacity(page.items.len() + page.unfit.len());
        for conv in &page.items {
            let record = Ok(to_record(conv)?);
            candidates.push((record, conv.id, conv.updated_at, conv.contact_id));
        }
        let mut keyless = Vec::new();
        for unfit in &page.unfit {
            let raw: Value = serde_json::from_str(&unfit.raw).unwrap_or(Value::Null);
            match raw_i64(&raw, "id") {
                Some(id) => candidates.push((
                    Err(Box::new(unfit.clone())),
                    id,
                    raw_i64(&raw, "updatedAt"),
                    raw_i64(&raw, "contactId"),
                )),
                None => keyless.push(unfit.clone()),
            }
        }
        let overlap = self.ctx.config.overlap_ms;
        let family = self.family;
        let claimed = &mut self.claimed;
        let wm = &self.state.wm;
        let pass = self
            .state
            .pass
            .as_mut()
            .ok_or_else(|| Fail::Other("internal: no pass in progress".into()))?;
        let mut reached_floor = false;
        let mut work = Vec::new();
        for (record, id, updated_at, contact_id) in candidates {
            let unknown_cursor = updated_at.is_none() && record.is_err();
            let updated = updated_at.unwrap_or(0);
            // A record whose cursor cannot be read says nothing about the floor.
            if !unknown_cursor && pass.floor.is_some_and(|f| updated < f) {
                reached_floor = true;
                continue;
            }
            let key = id.to_string();
            if !unknown_cursor {
                pass.seen.insert(key.clone(), updated);
            }
            if pass.done.contains(&id) {
                continue;
            }
            let full = pass.mode == SyncMode::FullRefresh;
            if !full && !wm.is_new(&key, updated, overlap) {
                continue;
            }
            let contact = contact_id.filter(|c| {
                family.contacts && !pass.contacts_done.contains(c) && claimed.insert(*c)
            });
            let messages_since = match (full, wm.watermark) {
                (false, Some(w)) => Some(wm.recent.get(&key).copied().unwrap_or(w) - overlap),
                _ => None,
            };
            work.push(Work {
                record,
                id,
                contact,
                messages_since,
            });
        }
        // Keep only what can fall in the next overlap window.
        if let Some(max) = pass.seen.values().copied().max() {
            pass.seen.retain(|_, v| *v >= max - overlap);
        }
        Ok((work, keyless, reached_floor))
    }

    async fn emit(&mut self, f: Fetched) -> Result<(), Fail> {
        self.since_checkpoint += 1
            + f.messages
                .as_ref()
                .map_or(0, |(fit, unfit)| fit.len() + unfit.len())
            + usize::from(f.contact.is_some());
        let out = &self.ctx.out;
        if self.family.conversations {
            match (&f.work.record, f.details) {
                // The list row's fields, completed by those only the conversation itself has.
                (Ok(record), Some(details)) => {
                    let mut merged = record.clone();
                    merged.extend(details);
                    out.record(CONVERSATIONS, merged).await?
                }
                (Ok(record), None) => out.record(CONVERSATIONS, record.clone()).await?,
                (Err(unfit), _) => quarantine(out, CONVERSATIONS, unfit).await?,
            }
            self.emitted += 1;
        }
        if let Some((messages, unfit)) = f.messages {
            let wanted = |created: Option<i64>| {
                let created = created.unwrap_or(i64::MAX);
                f.work.messages_since.is_none_or(|since| created >= since)
            };
            for m in messages {
                if wanted(m.get("createdAt").and_then(Value::as_i64)) {
                    out.record(MESSAGES, m).await?;
                }
            }
            for u in &unfit {
                let raw: Value = serde_json::from_str(&u.raw).unwrap_or(Value::Null);
                if wanted(raw_i64(&raw, "createdAt")) {
                    quarantine(out, MESSAGES, u).await?;
                }
            }
        }
        if let Some(cid) = f.work.contact {
            if let Some(read) = f.contact {
                self.emit_contact(cid, read).await?;
            }
            self.claimed.remove(&cid);
        }
        self.pass()?.done.insert(f.work.id);
        Ok(())
    }

    /// Emit what reading contact `cid` gave: its record, or a tombstone when Drift answered
    /// 404 (the contact was deleted). Either way it counts as read in this pass.
    /// An incremental pass writes a contact only when it is new or its record changed.
    async fn emit_contact(&mut self, cid: i64, read: ContactRead) -> Result<(), Fail> {
        match read {
            ContactRead::Found(record) => self.emit_found(cid, record).await?,
            ContactRead::Gone => {
                let mut key = Map::new();
                key.insert("id".into(), Value::from(cid));
                self.ctx.out.tombstone(CONTACTS, key).await?;
                self.pass()?.contacts_gone.insert(cid);
            }
            ContactRead::Unfit(unfit) => quarantine(&self.ctx.out, CONTACTS, &unfit).await?,
        }
        self.pass()?.contacts_done.insert(cid);
        Ok(())
    }

    /// Write contact `cid`'s record unless an incremental pass finds it unchanged.
    async fn emit_found(&mut self, cid: i64, record: Map<String, Value>) -> Result<(), Fail> {
        let print = fingerprint(&record);
        let full = self.pass()?.mode == SyncMode::FullRefresh;
        if full || self.contacts_known.get(&cid) != Some(&print) {
            self.ctx.out.record(CONTACTS, record).await?;
            self.pass()?.contacts_changed.insert(cid, print);
        }
        Ok(())
    }

    /// Re-read contacts fetched by earlier passes that this incremental pass did not read,
    /// at most [`crate::DriftSourceConfig::contacts_recheck_per_run`] of them, in a rotation
    /// by contactId that goes on where the last run stopped. A conversation's contact is
    /// re-read whenever the conversation changes; the rotation also brings contacts whose
    /// conversations did not change (a contact renamed through the API, a deleted contact that
    /// now answers 404) within `ceil(known / per_run)` incremental runs.
    async fn recheck_contacts(&mut self) -> Result<(), Fail> {
        let per_run = self.ctx.config.contacts_recheck_per_run;
        if !self.family.contacts || per_run == 0 || self.pass()?.mode == SyncMode::FullRefresh {
            return Ok(());
        }
        let done = self.pass()?.contacts_done.clone();
        let known: BTreeSet<i64> = self.contacts_known.keys().copied().collect();
        let ids = rotation(&known, self.state.recheck_after, per_run, |id| {
            !done.contains(id)
        });
        let Some(&last) = ids.last() else {
            return Ok(());
        };
        let client = self.contacts_client.clone();
        let reads = futures::stream::iter(ids)
            .map(|cid| {
                let client = client.clone();
                async move { (cid, read_contact(&client, cid, None).await) }
            })
            .buffer_unordered(self.concurrency());
        futures::pin_mut!(reads);
        let interval = Duration::from_millis(self.ctx.config.checkpoint_interval_ms);
        while let Some((cid, read)) = reads.next().await {
            if let Some(read) = read? {
                self.emit_contact(cid, read).await?;
            }
            if self.last_checkpoint.elapsed() >= interval {
                self.checkpoint().await?;
            }
        }
        self.state.recheck_after = Some(last);
        Ok(())
    }

    /// Conversations whose messages and contact are fetched at once.
    fn concurrency(&self) -> usize {
        match self.ctx.config.fetch_concurrency {
            0 => self.ctx.client.max_concurrency(),
            n => n,
        }
        .max(1)
    }

    /// Contacts named by email / external id in the configuration.
    async fn extra_contacts(&mut self) -> Result<(), Fail> {
        if !self.family.contacts {
            return Ok(());
        }
        let cfg = &self.ctx.config;
        let client = self.contacts_client.clone();
        for email in &cfg.contact_emails {
            let found = client.contacts_by_email(email).await?;
            self.emit_contacts(found).await?;
        }
        for id in &cfg.contact_external_ids {
            let found = client.contacts_by_external_id(id).await?;
            self.emit_contacts(found).await?;
        }
        Ok(())
    }

    async fn emit_contacts(
        &mut self,
        contacts: drift_client::Records<drift_client::Contact>,
    ) -> Result<(), Fail> {
        for c in contacts.items {
            if self.pass()?.contacts_done.insert(c.id) {
                self.emit_found(c.id, to_record(&c)?).await?;
            }
        }
        for unfit in &contacts.unfit {
            quarantine(&self.ctx.out, CONTACTS, unfit).await?;
        }
        Ok(())
    }

    async fn finish_pass(&mut self) -> Result<(), Fail> {
        let overlap = self.ctx.config.overlap_ms;
        let pass = self
            .state
            .pass
            .take()
            .ok_or_else(|| Fail::Other("internal: no pass".into()))?;
        self.state.wm = self.state.wm.advanced(&pass.seen, overlap);
        if !pass.contacts_changed.is_empty() || !pass.contacts_gone.is_empty() {
            // Written before the pass state: if the run dies in between, the pass resumes.
            self.contacts_known.extend(pass.contacts_changed);
            for gone in &pass.contacts_gone {
                self.contacts_known.remove(gone);
            }
            let known = Value::String(compact::id_map::to_string(&self.contacts_known));
            self.ctx
                .out
                .checkpoint(&contacts_key(&self.key), self.owner(), known)
                .await?;
        }
        self.checkpoint().await
    }

    fn owner(&self) -> &'static str {
        self.family
            .streams()
            .first()
            .copied()
            .unwrap_or(CONVERSATIONS)
    }

    async fn checkpoint(&mut self) -> Result<(), Fail> {
        self.last_checkpoint = Instant::now();
        self.since_checkpoint = 0;
        for meter in &mut self.meters {
            meter.report(&self.ctx.out).await?;
        }
        let value = serde_json::to_value(&self.state).map_err(|e| Fail::Other(e.to_string()))?;
        self.ctx
            .out
            .checkpoint(&self.key, self.owner(), value)
            .await?;
        Ok(())
    }
}

/// Records a pass emits at most between two checkpoints while its resume point moves (the
/// time bound is `checkpoint_interval_ms`): what a resumed pass sends again stays well
/// inside the file sinks' replay window (`sinks::files::WINDOW_RECORDS`, 10,000 per
/// stream) however fast the machine.
const CHECKPOINT_RECORDS: usize = 5_000;

/// Pages listed ahead of the first unfinished one, at most (bounds what a resumed pass reads
/// again and the size of `done`).
const MAX_OPEN_PAGES: usize = 3;

/// The pages of a pass whose conversations are not all emitted yet (oldest first), and the
/// conversations waiting for a fetch slot, each tagged with its page's sequence number.
#[derive(Default)]
struct Window {
    pages: VecDeque<OpenPage>,
    /// Sequence number of `pages[0]`.
    first: u64,
    queue: VecDeque<(u64, Work)>,
}

/// A listed page with conversations still to emit.
struct OpenPage {
    /// Conversations of the page to read that are not emitted yet.
    remaining: usize,
    /// Ids of every conversation on the page (dropped from `done` once it is complete).
    ids: Vec<i64>,
    /// Cursor of the page after it (None: nothing to resume at after it).
    next: Option<PageCursor>,
}

impl Window {
    fn push(&mut self, work: Vec<Work>, ids: Vec<i64>, next: Option<PageCursor>) {
        let seq = self.first + self.pages.len() as u64;
        self.pages.push_back(OpenPage {
            remaining: work.len(),
            ids,
            next,
        });
        self.queue.extend(work.into_iter().map(|w| (seq, w)));
    }

    fn finished(&mut self, seq: u64) {
        let page = seq
            .checked_sub(self.first)
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.pages.get_mut(i));
        if let Some(page) = page {
            page.remaining = page.remaining.saturating_sub(1);
        }
    }

    fn pop_complete(&mut self) -> Option<OpenPage> {
        if self.pages.front()?.remaining > 0 {
            return None;
        }
        self.first += 1;
        self.pages.pop_front()
    }

    /// List another page when fewer conversations wait than would fill every slot once.
    fn wants_page(&self, concurrency: usize) -> bool {
        self.queue.len() < concurrency && self.pages.len() < MAX_OPEN_PAGES
    }
}

/// `GET /contacts/{cid}`: the record, or [`ContactRead::Gone`] when Drift answers 404 (the
/// contact was deleted; `conversation` is the conversation that named it, for the log).
async fn read_contact(
    client: &Client,
    cid: i64,
    conversation: Option<i64>,
) -> Result<Option<ContactRead>, Fail> {
    match client.contact(cid).await {
        Ok(c) => Ok(Some(ContactRead::Found(to_record(&c)?))),
        Err(drift_client::Error::Unfit(unfit)) => Ok(Some(ContactRead::Unfit(unfit))),
        Err(drift_client::Error::NotFound { .. }) => {
            tracing::info!(
                contact = cid,
                conversation,
                "contact answers 404: deleted in Drift, marked deleted in the sink"
            );
            Ok(Some(ContactRead::Gone))
        }
        Err(e) => Err(Fail::from(e)),
    }
}

/// Up to `n` ids of `known` that `wanted` accepts, in ascending order after `after`, then
/// wrapping around from the smallest (a rotation that goes on where the last one stopped).
fn rotation(
    known: &BTreeSet<i64>,
    after: Option<i64>,
    n: usize,
    wanted: impl Fn(&i64) -> bool,
) -> Vec<i64> {
    let start = after.map_or(i64::MIN, |a| a.saturating_add(1));
    known
        .range(start..)
        .chain(known.range(..start))
        .copied()
        .filter(|id| wanted(id))
        .take(n)
        .collect()
}

/// The known contacts as stored: contactId -> fingerprint (`"5:77,9:-3"`, or a JSON object
/// as versions before 2026-12-06 wrote it, see [`compact`]), or (older versions still) a
/// list of contactIds, read as fingerprint 0 (unknown: written again when next read).
fn known_contacts(stored: &Value) -> Option<BTreeMap<i64, i64>> {
    match stored {
        Value::Array(_) => {
            let ids = compact::ids::from_value(stored)?;
            Some(ids.into_iter().map(|id| (id, 0)).collect())
        }
        _ => compact::id_map::from_value(stored),
    }
}

/// A record's fingerprint: FNV-1a 64 of its JSON (see `full_refresh::content_hash`), as i64.
fn fingerprint(record: &Map<String, Value>) -> i64 {
    let hex = content_hash(std::slice::from_ref(record));
    u64::from_str_radix(&hex, 16).map_or(0, |h| h as i64)
}

/// State key of the contactIds fetched by completed passes: kept apart from the pass state
/// so the frequent checkpoints of a pass do not rewrite it.
fn contacts_key(key: &str) -> String {
    format!("{key}.contacts_known")
}

/// Read the messages (when selected), the contact (when claimed) and, with `details`, the
/// conversation itself (`GET /conversations/{id}`: list rows lack participants, tags and
/// the playbook; REFERENCE §7.2) of one conversation, concurrently. A 404 (deleted
/// meanwhile) is logged and yields nothing; a conversation that does not fit its model
/// keeps its list row (with a warning).
async fn fetch(
    client: Client,
    contact_client: Client,
    messages: bool,
    details: bool,
    work: Work,
) -> Result<Fetched, Fail> {
    let id = work.id;
    // A list row that carries the arrays already (REFERENCE §7.2 says Drift's do not) needs
    // no second request.
    let complete = work
        .record
        .as_ref()
        .is_ok_and(|r| r.contains_key("conversationTags") && r.contains_key("participants"));
    let conv = async {
        if !details || complete || work.record.is_err() {
            return Ok(None);
        }
        match client.conversation(id).await {
            Ok(c) => Ok(Some(to_record(&c)?)),
            Err(drift_client::Error::NotFound { .. }) => Ok(None),
            Err(e @ drift_client::Error::Unfit { .. }) => {
                tracing::warn!(conversation = id, error = %e, "conversation details do not fit: its list row is kept");
                Ok(None)
            }
            Err(e) => Err(Fail::from(e)),
        }
    };
    let msgs = async {
        if !messages {
            return Ok(None);
        }
        match client.conversation_messages(id).await {
            Ok(list) => {
                let fit = list.items.iter().map(to_record).collect::<Result<_, _>>()?;
                Ok(Some((fit, list.unfit)))
            }
            Err(drift_client::Error::NotFound { .. }) => {
                tracing::warn!(
                    conversation = id,
                    "conversation gone before its messages were read"
                );
                Ok(Some((Vec::new(), Vec::new())))
            }
            Err(e) => Err(Fail::from(e)),
        }
    };
    let contact = async {
        match work.contact {
            Some(cid) => read_contact(&contact_client, cid, Some(id)).await,
            None => Ok(None),
        }
    };
    let (messages, contact, conv) = futures::join!(msgs, contact, conv);
    Ok(Fetched {
        work,
        messages: messages?,
        contact: contact?,
        details: conv?,
    })
}

#[cfg(test)]
mod tests {
    use super::rotation;
    use std::collections::BTreeSet;

    #[test]
    fn known_contacts_read_both_stored_forms() {
        use serde_json::json;
        let map = super::known_contacts(&json!({"5": 77, "9": -3})).unwrap();
        assert_eq!(map.into_iter().collect::<Vec<_>>(), [(5, 77), (9, -3)]);
        let compact = super::known_contacts(&json!("5:77,9:-3")).unwrap();
        assert_eq!(compact.into_iter().collect::<Vec<_>>(), [(5, 77), (9, -3)]);
        let old = super::known_contacts(&json!([5, 9])).unwrap();
        assert_eq!(old.into_iter().collect::<Vec<_>>(), [(5, 0), (9, 0)]);
        assert!(super::known_contacts(&json!("x")).is_none());
    }

    #[test]
    fn rotation_goes_on_after_the_last_id_and_wraps_around() {
        let known: BTreeSet<i64> = [1, 3, 5, 7, 9].into();
        assert_eq!(rotation(&known, None, 2, |_| true), [1, 3]);
        assert_eq!(rotation(&known, Some(3), 2, |_| true), [5, 7]);
        assert_eq!(rotation(&known, Some(7), 3, |_| true), [9, 1, 3]);
        assert_eq!(rotation(&known, Some(9), 10, |id| *id != 5), [1, 3, 7, 9]);
        assert!(rotation(&BTreeSet::new(), Some(1), 3, |_| true).is_empty());
    }
}
