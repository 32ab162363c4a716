// Package image tests the container image's contents without a container
// runtime: it lays out the image's root filesystem with the script the
// Dockerfile runs (deploy/image/build-rootfs.sh) and starts the binary in
// it the way the image does — chrooted into that tree mounted read-only,
// as uid/gid 65532 with no supplementary groups and no new privileges,
// working directory /data, only the environment given — then runs
// migrations, a broker and a gateway from it on PostgreSQL and checks them
// over loopback. It needs root (chroot, mount namespaces) and a PostgreSQL
// test database; in CI (CI=true) a missing one fails instead of skipping.
package image
