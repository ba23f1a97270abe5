//! Adds up the requests and capacity units the store used, as DynamoDB reports
//! them: every request asks for its consumed capacity, so cost is measured, not
//! guessed.

use std::sync::Mutex;

use aws_sdk_dynamodb::types::ConsumedCapacity;

#[derive(Debug, Default)]
pub struct CapacityMeter {
    totals: Mutex<Capacity>,
}

#[derive(Debug, Default, Clone, Copy, PartialEq)]
pub struct Capacity {
    pub read_requests: u64,
    pub write_requests: u64,
    pub read_units: f64,
    pub write_units: f64,
}

impl std::ops::Sub for Capacity {
    type Output = Capacity;
    fn sub(self, o: Capacity) -> Capacity {
        Capacity {
            read_requests: self.read_requests - o.read_requests,
            write_requests: self.write_requests - o.write_requests,
            read_units: self.read_units - o.read_units,
            write_units: self.write_units - o.write_units,
        }
    }
}

fn units<'a>(consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) -> f64 {
    consumed
        .into_iter()
        .filter_map(|c| c.capacity_units())
        .sum()
}

impl CapacityMeter {
    pub fn totals(&self) -> Capacity {
        *self.totals.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn read<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.read_requests += 1;
        t.read_units += units(consumed);
    }

    pub(super) fn write<'a>(&self, consumed: impl IntoIterator<Item = &'a ConsumedCapacity>) {
        let mut t = self.totals.lock().unwrap_or_else(|e| e.into_inner());
        t.write_requests += 1;
        t.write_units += units(consumed);
    }
}
