"""pysaml2 attribute maps for the NIA-like test IdP."""
