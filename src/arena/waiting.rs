//! Waiting for room in an arena: the blocking, timeout and async forms of
//! insert, and async lock acquisition.
//!
//! The waiting protocol is the crate's [`WaitQueue`] (invariant Q1): a
//! waiter registers, listens, then pops or touches every free-list head
//! with a read-modify-write (`FreePool::pop_or_touch`) before it sleeps;
//! every path that frees a slot ends in `Core::recycle`, a push onto a
//! free list (an AcqRel compare-and-swap on those heads) followed by
//! `notify_one` (one relaxed load when nobody waits).
//!
//! Each recycled slot wakes one more waiter, in the order they started
//! listening, and a new waiter does not barge ahead of registered ones, so
//! waiters are served roughly first come, first served.

use std::time::Duration;

use crate::MessageToken;
use crate::wait_queue::{Look, Patience};

use super::Core;

impl<T, M> Core<T, M> {
    /// Inserts, waiting for room as long as `patience` allows; the value
    /// comes back when the wait ends without room (or the arena can never
    /// have room: a maximum capacity of zero). A newcomer queues behind
    /// registered waiters.
    pub(crate) fn insert_wait(&self, value: T, patience: Patience) -> Result<(MessageToken, &M), T>
    where
        M: Default,
    {
        // A slot that retires meanwhile (its generations used up) may take
        // the last room there could ever be: give up then (`retire`
        // wakes every waiter to look).
        self.room.wait_while(
            patience,
            true,
            value,
            || self.max_capacity() != 0,
            |value, look| self.insert_look(value, look),
        )
    }

    /// Inserts, awaiting room. Cancel-safe: dropping the future drops the
    /// value with it and holds no slot; a notification it had received
    /// passes to the next waiter.
    pub(crate) async fn insert_async(&self, value: T) -> Result<(MessageToken, &M), T>
    where
        M: Default,
    {
        self.room
            .wait_async_while(
                true,
                value,
                || self.max_capacity() != 0,
                |value, look| self.insert_look(value, look),
            )
            .await
    }

    /// One look for a free slot: [`insert`](Core::insert), except that a
    /// registered waiter pops or touches every free list (Q1) before it
    /// grows or gives up.
    fn insert_look(&self, value: T, look: Look) -> Result<(MessageToken, &M), T>
    where
        M: Default,
    {
        if look == Look::First {
            return self.insert(value);
        }
        let popped = if cfg!(slotarena_mutation = "waiter_without_touch") {
            self.free.pop(self)
        } else {
            self.free.pop_or_touch(self)
        };
        match popped {
            Some(index) => Ok(self.fill(index, value)),
            None => self.insert(value),
        }
    }
}

/// Returns `Pending` once (waking its task at once), then `Ready`.
struct YieldNow(bool);

impl core::future::Future for YieldNow {
    type Output = ();

    fn poll(
        mut self: core::pin::Pin<&mut Self>,
        cx: &mut core::task::Context<'_>,
    ) -> core::task::Poll<()> {
        if self.0 {
            return core::task::Poll::Ready(());
        }
        self.0 = true;
        cx.waker().wake_by_ref();
        core::task::Poll::Pending
    }
}

impl<T, K: crate::Key> crate::SlotArena<T, K> {
    /// [`insert`](Self::insert), waiting for a free slot when the arena is
    /// full at its maximum capacity: back-pressure instead of an error.
    /// The waiting thread sleeps until a remove, take or last guard frees
    /// a slot; waiters are served roughly first come, first served.
    ///
    /// # Errors
    ///
    /// Only for an arena whose maximum capacity is zero, or drops to zero
    /// while it waits (its last slots retired, their generations used up):
    /// no slot can ever free up, and the value comes back.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::thread;
    /// use slotarena::SlotArena;
    ///
    /// let arena = SlotArena::new(1);
    /// let first = arena.insert(1).unwrap();
    /// let consumer = {
    ///     let arena = arena.clone();
    ///     thread::spawn(move || arena.take(first))
    /// };
    /// let second = arena.insert_wait(2).unwrap(); // waits for the take
    /// assert_eq!(consumer.join().unwrap(), Ok(1));
    /// assert_eq!(*arena.get(second).unwrap(), 2);
    /// ```
    pub fn insert_wait(&self, value: T) -> Result<K, super::InsertError<T>> {
        self.core
            .insert_wait(value, Patience::Forever)
            .map(|(token, ())| K::from_token(token))
            .map_err(|value| super::InsertError { value })
    }

    /// [`insert_wait`](Self::insert_wait) for at most `timeout`.
    ///
    /// # Errors
    ///
    /// [`InsertError`](super::InsertError) carrying the value when no slot
    /// freed up in time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    ///
    /// let arena = slotarena::SlotArena::new(1);
    /// arena.insert('a').unwrap();
    /// let late = arena.insert_timeout('b', Duration::from_millis(10));
    /// assert_eq!(late.unwrap_err().into_inner(), 'b');
    /// ```
    pub fn insert_timeout(&self, value: T, timeout: Duration) -> Result<K, super::InsertError<T>> {
        self.core
            .insert_wait(value, Patience::timeout(timeout))
            .map(|(token, ())| K::from_token(token))
            .map_err(|value| super::InsertError { value })
    }

    /// [`insert_wait`](Self::insert_wait) as a future, for any async
    /// runtime. Cancel-safe: dropping the future drops the value with it
    /// and holds no slot.
    ///
    /// # Errors
    ///
    /// As [`insert_wait`](Self::insert_wait).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let arena = slotarena::SlotArena::new(1);
    /// let first = arena.insert(1).unwrap();
    /// let consumer = {
    ///     let arena = arena.clone();
    ///     tokio::spawn(async move { arena.take(first) })
    /// };
    /// let second = arena.insert_async(2).await.unwrap();
    /// assert_eq!(consumer.await.unwrap(), Ok(1));
    /// assert_eq!(*arena.get(second).unwrap(), 2);
    /// # });
    /// ```
    pub async fn insert_async(&self, value: T) -> Result<K, super::InsertError<T>> {
        self.core
            .insert_async(value)
            .await
            .map(|(token, ())| K::from_token(token))
            .map_err(|value| super::InsertError { value })
    }
}

impl<T, M> Core<T, M> {
    /// Takes the lock on the value `token` names (for writing if `write`),
    /// awaiting an incompatible guard instead of blocking the thread. The
    /// waiting task marks the word `PARKED`, so the guard's unlock wakes it
    /// (`sync::unpark_all` notifies every waiting task, which re-checks).
    pub(crate) async fn lock_async(
        &self,
        token: MessageToken,
        write: bool,
    ) -> Result<&super::Slot<T>, crate::MemoryError> {
        let (slot, _) = self.place(token)?;
        loop {
            if write && self.pins.any_pinned(token.index() as u32) {
                // Pinned readers wake nobody when they unpin, and a writer
                // never locks while they read (`lock_exclusive`): let the
                // executor run something else, and look again.
                YieldNow(false).await;
                continue;
            }
            let attempt = if write {
                slot.lock_write(token, false)
            } else {
                slot.lock_read(token, false)
            };
            match attempt {
                Err(crate::MemoryError::AlreadyBorrowed) => {}
                Ok(()) if write && self.unpinned_after_lock(self.held(token)?).is_err() => {
                    // A pin landed between the look and the lock: we let go;
                    // let the executor run something else, and try again.
                    YieldNow(false).await;
                    continue;
                }
                done => return done.map(|()| slot),
            }
            let listener = crate::sync::listen_for_unpark();
            if slot.park_async(token, write) {
                listener.await;
            }
        }
    }
}

impl<T, K: crate::Key> crate::SlotArena<T, K> {
    /// [`get_owned`](Self::get_owned) as a future: awaits a writer instead
    /// of blocking the thread. Cancel-safe: a dropped future holds no lock.
    ///
    /// # Errors
    ///
    /// As [`get`](Self::get).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(5).unwrap();
    /// let guard = arena.get_owned_async(token).await.unwrap();
    /// assert_eq!(*guard, 5);
    /// # });
    /// ```
    pub async fn get_owned_async(
        &self,
        key: K,
    ) -> Result<super::OwnedReadGuard<T, T, K>, crate::MemoryError> {
        let token = key.to_token();
        let slot = self.core.lock_async(token, false).await?;
        Ok(super::OwnedReadGuard::new(self.clone(), slot, token))
    }

    /// [`get_mut_owned`](Self::get_mut_owned) as a future: awaits every
    /// other guard instead of blocking the thread. Cancel-safe.
    ///
    /// # Errors
    ///
    /// As [`get_mut`](Self::get_mut).
    ///
    /// # Examples
    ///
    /// ```
    /// # tokio::runtime::Runtime::new().unwrap().block_on(async {
    /// let arena = slotarena::SlotArena::new(2);
    /// let token = arena.insert(5).unwrap();
    /// let reader = arena.get_owned(token).unwrap();
    /// let writer = tokio::spawn({
    ///     let arena = arena.clone();
    ///     async move { *arena.get_mut_owned_async(token).await.unwrap() += 1 }
    /// });
    /// drop(reader); // the writer's task wakes
    /// writer.await.unwrap();
    /// assert_eq!(*arena.get(token).unwrap(), 6);
    /// # });
    /// ```
    pub async fn get_mut_owned_async(
        &self,
        key: K,
    ) -> Result<super::OwnedWriteGuard<T, T, K>, crate::MemoryError> {
        let token = key.to_token();
        let slot = self.core.lock_async(token, true).await?;
        Ok(super::OwnedWriteGuard::new(self.clone(), slot, token))
    }
}
