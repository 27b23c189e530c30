"""The fake DMS: sample dealer feeds dropped as a dealer management system would."""
