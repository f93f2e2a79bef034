<?php
// The fixed test user, authenticated without UI; attributes named by their NIA URIs, taken
// from the JSON object in AISGATE_SSP_ATTRIBUTES ({"uri": ["value"], ...}).
$config = [
    'nia-user' => array_merge(
        ['exampleauth:StaticSource'],
        json_decode(getenv('AISGATE_SSP_ATTRIBUTES'), true)
    ),
];
