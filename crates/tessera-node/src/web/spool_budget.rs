//! Memory that the STOW-RS requests of one node may fill with spooled parts
//! together. With a budget per request instead, N concurrent uploads could
//! keep N times `spool_memory_limit` in memory.

use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Bytes per semaphore permit. Counting in KiB lets a budget of several GiB
/// fit the `u32` that `try_acquire_many_owned` takes.
const UNIT: u64 = 1024;

/// The node-wide spool memory budget of STOW-RS, shared by all requests.
#[derive(Clone)]
pub struct SpoolBudget {
    permits: Arc<Semaphore>,
}

/// Spool memory granted to one part. The bytes return to the budget when
/// the grant is dropped, which is once the part is stored or rejected.
pub struct Grant {
    permit: Option<OwnedSemaphorePermit>,
}

impl SpoolBudget {
    pub fn new(bytes: u64) -> Self {
        let units = (bytes / UNIT).min(Semaphore::MAX_PERMITS as u64) as usize;
        SpoolBudget {
            permits: Arc::new(Semaphore::new(units)),
        }
    }

    /// Takes all of the budget that is free now, without waiting. A part
    /// that outgrows its grant goes to disk, so an empty grant only costs
    /// speed.
    pub fn take(&self) -> Grant {
        let free = self.permits.available_permits().min(u32::MAX as usize) as u32;
        // Another request may take permits between the two calls; the part
        // then spools to disk.
        let permit = match free {
            0 => None,
            units => self.permits.clone().try_acquire_many_owned(units).ok(),
        };
        Grant { permit }
    }
}

impl Grant {
    /// Returns how many bytes the part may keep in memory.
    pub fn bytes(&self) -> u64 {
        self.permit
            .as_ref()
            .map_or(0, |permit| permit.num_permits() as u64 * UNIT)
    }

    /// Gives back what a finished part of `used` bytes does not hold in
    /// memory: everything when it went to disk, else the unused rest.
    pub fn keep(mut self, used: u64) -> Grant {
        if used > self.bytes() {
            return Grant { permit: None };
        }
        let Some(permit) = self.permit.as_mut() else {
            return self;
        };

        let units = used.div_ceil(UNIT) as usize;
        let kept = permit.split(units);
        Grant { permit: kept }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_grant_gets_only_what_is_left() {
        let budget = SpoolBudget::new(64 * UNIT);

        let first = budget.take();
        let second = budget.take();
        assert_eq!(first.bytes(), 64 * UNIT);
        assert_eq!(second.bytes(), 0);
    }

    #[test]
    fn kept_part_returns_the_unused_rest() {
        let budget = SpoolBudget::new(64 * UNIT);

        let held = budget.take().keep(10 * UNIT + 1);
        let next = budget.take();
        assert_eq!(held.bytes(), 11 * UNIT);
        assert_eq!(next.bytes(), 53 * UNIT);
    }

    #[test]
    fn part_on_disk_returns_its_whole_grant() {
        let budget = SpoolBudget::new(64 * UNIT);

        let held = budget.take().keep(65 * UNIT);
        assert_eq!(held.bytes(), 0);
        assert_eq!(budget.take().bytes(), 64 * UNIT);
    }

    #[test]
    fn dropped_grant_returns_to_the_budget() {
        let budget = SpoolBudget::new(64 * UNIT);

        drop(budget.take().keep(32 * UNIT));
        assert_eq!(budget.take().bytes(), 64 * UNIT);
    }
}
