//! One conformance story for `ProfileStore`, run against SQLite always and against
//! MySQL/MariaDB when `MOOCARD_TEST_MYSQL_URL` is set.

#[path = "../support/mod.rs"]
mod support;

use std::sync::Arc;

use moocard::{
    crypto::{KeyRing, Sealed},
    db::{DbOptions, DbPool},
    domain::{ids::OwnerKey, record::RecordKey},
    store::{self, NewImage, ProfileStore, Staged, StoreError, WrappedRow},
};
use support::TestDb;

async fn open(db: &TestDb) -> Arc<dyn ProfileStore> {
    let pool = DbPool::connect(&db.url, &DbOptions::default())
        .await
        .expect("connect");
    let s = store::for_pool(&pool);
    s.migrate().await.expect("migrate");
    s.migrate().await.expect("migrations are idempotent");
    s.check_schema().await.expect("schema current");
    s
}

fn sealed(ring: &KeyRing, text: &str) -> Sealed {
    ring.seal(text.as_bytes(), b"aad")
}

fn image(owner: OwnerKey, generation: i64, size: u32) -> NewImage {
    NewImage {
        id: format!("{:02x}{}", size % 256, moocard::domain::ids::random_id())[..32].to_owned(),
        owner,
        generation,
        size,
        content_type: "image/jpeg".into(),
        bytes: vec![size as u8; 100],
    }
}

async fn story(s: Arc<dyn ProfileStore>) {
    let ring = KeyRing::new(vec![("k1".into(), [1; 32])], "k1").expect("ring");
    let (a, b) = (OwnerKey([1; 32]), OwnerKey([2; 32]));
    s.ping().await.expect("ping");

    // Records: insert, conflict on re-insert, compare-and-set update, delete.
    assert!(s
        .get_record(&a, RecordKey::DisplayName)
        .await
        .expect("get")
        .is_none());
    assert!(!s.owner_exists(&a).await.expect("exists"));
    s.insert_record(
        &a,
        RecordKey::DisplayName,
        &sealed(&ring, "one"),
        &[[5; 32]],
        1000,
    )
    .await
    .expect("insert");
    assert!(matches!(
        s.insert_record(
            &a,
            RecordKey::DisplayName,
            &sealed(&ring, "dup"),
            &[[6; 32]],
            1001
        )
        .await,
        Err(StoreError::Conflict)
    ));
    // The aliases share the record's transaction: the refused insert added none.
    assert_eq!(s.resolve_alias(&[5; 32]).await.expect("resolve"), Some(a));
    assert_eq!(s.resolve_alias(&[6; 32]).await.expect("resolve"), None);
    let rec = s
        .get_record(&a, RecordKey::DisplayName)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(rec.version, 1);
    assert_eq!(ring.open(&rec.sealed, b"aad").expect("open"), b"one");
    s.update_record(&a, RecordKey::DisplayName, &sealed(&ring, "two"), 1, 2000)
        .await
        .expect("cas");
    assert!(matches!(
        s.update_record(&a, RecordKey::DisplayName, &sealed(&ring, "stale"), 1, 2001)
            .await,
        Err(StoreError::Conflict)
    ));
    let rec = s
        .get_record(&a, RecordKey::DisplayName)
        .await
        .expect("get")
        .expect("present");
    assert_eq!((rec.version, rec.updated_at_ms), (2, 2000));
    assert!(s.owner_exists(&a).await.expect("exists"));
    assert!(s
        .delete_record(&a, RecordKey::DisplayName)
        .await
        .expect("delete"));
    assert!(!s
        .delete_record(&a, RecordKey::DisplayName)
        .await
        .expect("delete again"));

    // Aliases are idempotent and resolve to their owner.
    s.add_aliases(&a, &[[9; 32], [8; 32]])
        .await
        .expect("aliases");
    s.add_aliases(&a, &[[9; 32]]).await.expect("again");
    assert_eq!(s.resolve_alias(&[9; 32]).await.expect("resolve"), Some(a));
    assert_eq!(s.resolve_alias(&[7; 32]).await.expect("resolve"), None);

    // Uploads.
    s.put_upload("u1", &a, &sealed(&ring, "orig"), 1000)
        .await
        .expect("upload");
    let (owner, up) = s.get_upload("u1").await.expect("get").expect("present");
    assert_eq!(owner, a);
    assert_eq!(ring.open(&up, b"aad").expect("open"), b"orig");
    assert!(s.delete_upload("u1").await.expect("delete"));
    assert!(s.get_upload("u1").await.expect("get").is_none());

    // Images: generation 1 goes live with the avatar record, generation 2 replaces it.
    s.insert_record(&a, RecordKey::Avatar, &sealed(&ring, "g0"), &[], 1000)
        .await
        .expect("avatar");
    let gen1: Vec<NewImage> = [512, 32].into_iter().map(|sz| image(a, 1, sz)).collect();
    s.put_images(&gen1, 1000).await.expect("images");
    s.put_images(&gen1, 1000).await.expect("idempotent");
    s.commit_avatar(
        &a,
        &sealed(&ring, "g1"),
        1,
        Some(1),
        &Staged::default(),
        1000,
    )
    .await
    .expect("commit");
    // A commit that loses its compare-and-set stores nothing it staged.
    let lost = sealed(&ring, "lost master");
    let staged = Staged {
        images: &[],
        master: Some(&lost),
    };
    assert!(matches!(
        s.commit_avatar(&a, &sealed(&ring, "x"), 1, Some(1), &staged, 1000)
            .await,
        Err(StoreError::Conflict)
    ));
    assert!(s.get_master(&a, 1).await.expect("master").is_none());
    let got = s
        .get_image(&gen1[0].id)
        .await
        .expect("get")
        .expect("present");
    assert_eq!(
        (got.content_type.as_str(), got.bytes.len()),
        ("image/jpeg", 100)
    );
    // Generation 2's variants and master are stored by the commit that makes them live.
    let gen2: Vec<NewImage> = [512, 32].into_iter().map(|sz| image(a, 2, sz)).collect();
    assert_eq!(s.purge_dead_images(3000).await.expect("purge"), 0);
    let master2 = sealed(&ring, "master 2");
    let staged = Staged {
        images: &gen2,
        master: Some(&master2),
    };
    s.commit_avatar(&a, &sealed(&ring, "g2"), 2, Some(2), &staged, 6000)
        .await
        .expect("commit");
    let kept = s.get_master(&a, 2).await.expect("master").expect("kept");
    assert_eq!(ring.open(&kept, b"aad").expect("open"), b"master 2");
    // Generation 1 is now dead and older than the cutoff; generation 2 is live.
    assert_eq!(s.purge_dead_images(3000).await.expect("purge"), 2);
    assert!(s.get_image(&gen1[0].id).await.expect("get").is_none());
    assert!(s.get_image(&gen2[0].id).await.expect("get").is_some());
    assert_eq!(
        s.purge_dead_images(i64::MAX)
            .await
            .expect("live images are kept"),
        0
    );

    // Key rotation support.
    let samples = s.kek_samples().await.expect("samples");
    assert_eq!(
        samples.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>(),
        vec!["k1"]
    );
    s.put_upload("u2", &b, &sealed(&ring, "orig"), 1000)
        .await
        .expect("upload");
    let rows = s.rows_to_rewrap("k2", 100).await.expect("rows");
    assert_eq!(rows.len(), 3, "avatar record of a + upload u2 + master 2");
    assert!(rows.iter().any(|(r, _, _)| *r == WrappedRow::Master(a, 2)));
    assert!(rows
        .iter()
        .any(|(r, _, _)| *r == WrappedRow::Upload("u2".into())));
    for (row, _, wrapped) in &rows {
        assert!(s
            .swap_wrapped(row, wrapped, &[0; 40], "k2")
            .await
            .expect("swap"));
        assert!(!s
            .swap_wrapped(row, wrapped, &[1; 40], "k2")
            .await
            .expect("stale swap"));
    }
    assert!(s.rows_to_rewrap("k2", 100).await.expect("rows").is_empty());

    // Deleting an owner removes everything of theirs and nothing of others'.
    s.insert_record(&b, RecordKey::DisplayName, &sealed(&ring, "b"), &[], 1000)
        .await
        .expect("b");
    s.delete_owner(&a).await.expect("delete owner");
    assert!(!s.owner_exists(&a).await.expect("exists"));
    assert_eq!(s.resolve_alias(&[9; 32]).await.expect("resolve"), None);
    assert!(s.get_image(&gen2[0].id).await.expect("get").is_none());
    assert!(s.owner_exists(&b).await.expect("b kept"));
    assert!(s.get_upload("u2").await.expect("get").is_some());
    assert_eq!(s.purge_stale_uploads(2000).await.expect("purge"), 1);
}

#[tokio::test]
async fn sqlite_conformance() {
    let db = TestDb::sqlite();
    story(open(&db).await).await;
}

#[tokio::test]
async fn mysql_conformance() {
    // Runs only when MOOCARD_TEST_MYSQL_URL is set (CI sets it); fails if unreachable.
    let Some(db) = TestDb::mysql().await else {
        return;
    };
    story(open(&db).await).await;
}

#[tokio::test]
async fn schema_check_refuses_an_unmigrated_database() {
    let db = TestDb::new().await;
    let pool = DbPool::connect(&db.url, &DbOptions::default())
        .await
        .expect("connect");
    let err = store::for_pool(&pool)
        .check_schema()
        .await
        .expect_err("behind");
    assert!(err.to_string().contains("migration"), "{err}");
}
