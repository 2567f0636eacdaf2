# DMARC (policy/dmarc.c): RFC 7489 mode takes Organizational Domains from
# the Public Suffix List through libpsl (Debian: libpsl-dev, publicsuffix).
pkg_check_modules(PSL REQUIRED IMPORTED_TARGET libpsl)
target_link_libraries(policy PUBLIC PkgConfig::PSL)
