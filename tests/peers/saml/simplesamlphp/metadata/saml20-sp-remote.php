<?php
// The SP (aisgate) from its own metadata XML, parsed by SimpleSAMLphp's SAMLParser.
$file = getenv('AISGATE_SSP_SP_METADATA');
if (is_readable($file) && filesize($file) > 0) {
    foreach (\SimpleSAML\Metadata\SAMLParser::parseDescriptorsString(file_get_contents($file)) as $entity) {
        $sp = $entity->getMetadata20SP();
        if ($sp !== null) {
            $metadata[$sp['entityid']] = $sp;
        }
    }
}
