#!/bin/sh
# Install, on Debian 12 as root, every package milter-stress needs to build,
# run, and run its whole test suite. Safe to run again.
set -eu

if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps.sh: run as root (it uses apt-get)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
# Postfix asks how to configure the system's own instance; the tests run a
# private instance and must not touch the system one.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -q
apt-get install -y -q --no-install-recommends \
	build-essential autoconf automake autoconf-archive libtool pkg-config make \
	libmilter-dev check libpcre2-dev libc-ares-dev libmicrohttpd-dev libsystemd-dev \
	libcurl4-openssl-dev libjson-c-dev rspamd \
	clamav-daemon spamassassin spamd \
	dnsmasq-base \
	liblmdb-dev lmdb-utils libhiredis-dev redis-server \
	postfix swaks miltertest prometheus curl \
	clang libclang-rt-14-dev \
	procps iproute2 ca-certificates \
	debhelper dpkg-dev devscripts lintian systemd git python3 \
	gnuplot-nox util-linux mount
