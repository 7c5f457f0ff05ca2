// Example YARA rules for the bundled demo: the ransom-note text WhisperGate's
// stage 1 writes to the MBR (January 2022), as bytes in a PE file. For real
// work use a maintained set (signature-base's apt_ua_wiper_whispergate.yar).

rule CRRT_Example_WhisperGate_Note : T1561_002 wiper {
    meta:
        description = "WhisperGate stage 1 ransom note inside a Windows executable"
        reference = "https://www.microsoft.com/security/blog/2022/01/15/destructive-malware-targeting-ukrainian-organizations/"
        score = 85
    strings:
        $marker = { 41 41 41 41 41 00 }
        $note = "Your hard drive has been corrupted"
        $btc = "1AVNM68gj6PGPFcJuftKATa4WLnzg8fpfv"
    condition:
        uint16(0) == 0x5a4d and $note and ($marker or $btc)
}
