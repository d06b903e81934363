"""What one worker or the workers of one host share: single flight, the derivation limiter, the write counter."""
