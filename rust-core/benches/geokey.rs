//! GeoKey derivation cost per scheme, and what the keyring cache saves.
//!
//! `cargo bench -p spaces-core --bench geokey`

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use spaces_core::geo::{
    Cell, CellTracker, Fix, GeoKey, GeoKeyring, Level, ORIGIN_NAMESPACE, Point, Scheme,
    TrackerConfig,
};

fn derivation(c: &mut Criterion) {
    let cell = Cell::from_labels(Level::Umap, "48.85", "-2.34").expect("valid cell");
    let mut group = c.benchmark_group("geokey");
    group.bench_function("derive_uplanet_scrypt", |b| {
        b.iter(|| GeoKey::derive(black_box(&cell), Scheme::Uplanet, ORIGIN_NAMESPACE))
    });
    group.bench_function("derive_nip101_sha256", |b| {
        b.iter(|| GeoKey::derive(black_box(&cell), Scheme::Nip101, ORIGIN_NAMESPACE))
    });
    let ring = GeoKeyring::origin();
    ring.key(&cell).expect("derives");
    group.bench_function("keyring_cached_lookup", |b| {
        b.iter(|| ring.key(black_box(&cell)))
    });
    group.finish();
}

fn cells(c: &mut Criterion) {
    let point = Point::new(48.853, -2.341).expect("valid point");
    let cell = Cell::containing(point, Level::Umap).expect("has a cell");
    let mut group = c.benchmark_group("cell");
    group.bench_function("containing_umap", |b| {
        b.iter(|| Cell::containing(black_box(point), Level::Umap))
    });
    group.bench_function("neighbours", |b| b.iter(|| black_box(&cell).neighbours()));
    let mut tracker = CellTracker::new(TrackerConfig::default());
    let mut t = 0u64;
    group.bench_function("tracker_update", |b| {
        b.iter(|| {
            t += 1_000;
            tracker.update(Fix {
                lat: 48.853,
                lon: -2.341,
                accuracy_m: 10.0,
                time_ms: t,
            })
        })
    });
    group.finish();
}

criterion_group!(benches, derivation, cells);
criterion_main!(benches);
