<?php
/**
 * Composer (PSR-4) entry for Comet\CometException. The code lives in ../comet.php, the
 * single file XAMPP users include, so the class and the comet_* functions cannot drift apart.
 */
require_once dirname(__DIR__) . '/comet.php';
