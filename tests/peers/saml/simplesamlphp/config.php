<?php
// SimpleSAMLphp (Debian package) as a NIA-like IdP for aisgate's interop tests; the test sets
// SIMPLESAMLPHP_CONFIG_DIR to this directory and AISGATE_SSP_* for the run (see README.txt).
$dir = getenv('AISGATE_SSP_DIR');
$config = [
    'baseurlpath' => getenv('AISGATE_SSP_BASE') . '/',
    'certdir' => $dir,
    'loggingdir' => $dir,
    'datadir' => $dir,
    'tempdir' => $dir,
    'metadatadir' => __DIR__ . '/metadata',
    'metadata.sources' => [['type' => 'flatfile']],
    'technicalcontact_name' => 'aisgate interop tests',
    'technicalcontact_email' => 'na@example.org',
    'secretsalt' => 'aisgate-interop-tests-only',
    'auth.adminpassword' => bin2hex(random_bytes(16)),
    'admin.protectindexpage' => true,
    'admin.protectmetadata' => false,
    'enable.saml20-idp' => true,
    'module.enable' => ['exampleauth' => true, 'core' => true, 'saml' => true],
    'logging.level' => SimpleSAML\Logger::WARNING,
    'logging.handler' => 'errorlog',
    'store.type' => 'phpsession',
    'session.phpsession.savepath' => $dir,
    'session.cookie.secure' => false,
    'timezone' => 'UTC',
    'language.default' => 'en',
    'showerrors' => true,
    'errorreporting' => false,
    'debug' => ['saml' => false, 'backtraces' => true, 'validatexml' => false],
];
