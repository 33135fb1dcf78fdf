// SPDX-License-Identifier: Apache-2.0
pragma solidity 0.8.37;

/*
 * Ties the committed artifacts (contracts/out, written by scripts/build-contracts.sh) to the sources
 * these tests exercise: the committed creation code, deployed with the same arguments at the same
 * address as forge's own build, must yield the same runtime code up to the CBOR metadata trailer (whose
 * hash covers source unit names, which differ between the two builds). So the bytecode that daemons and
 * the devnet deploy is the bytecode that passed the tests, and a compiler-settings drift between
 * foundry.toml and the build script fails here.
 */

import {Test} from "./utils/Test.sol";
import {OpenSeedChannels} from "../src/OpenSeedChannels.sol";
import {TestUSDC} from "../src/TestUSDC.sol";

contract ArtifactsTest is Test {
    function _artifactCreationCode(string memory name) internal view returns (bytes memory) {
        string memory json = vm.readFile(string.concat(vm.projectRoot(), "/out/", name, ".json"));
        return vm.parseJsonBytes(json, ".bytecode");
    }

    function _create(bytes memory initCode) internal returns (address a) {
        assembly ("memory-safe") {
            a := create(0, add(initCode, 0x20), mload(initCode))
        }
        vm.assertTrue(a != address(0), "artifact deployment failed");
    }

    /// Runtime code without solc's trailing CBOR metadata (its length is the last two bytes).
    function _stripMetadata(bytes memory code) internal pure returns (bytes memory out) {
        require(code.length >= 2, "code too short");
        uint256 cbor = (uint256(uint8(code[code.length - 2])) << 8) | uint8(code[code.length - 1]);
        require(cbor + 2 <= code.length, "bad metadata length");
        out = new bytes(code.length - cbor - 2);
        for (uint256 i = 0; i < out.length; i++) {
            out[i] = code[i];
        }
    }

    function test_committed_OpenSeedChannels_matches_source() public {
        address usdc = address(0xC0FFEE);
        uint256 snap = vm.snapshotState();
        address fromSource = address(new OpenSeedChannels(usdc, 900));
        bytes memory code = fromSource.code;
        vm.revertToState(snap);
        bytes memory init = abi.encodePacked(_artifactCreationCode("OpenSeedChannels"), abi.encode(usdc, uint64(900)));
        address fromArtifact = _create(init);
        vm.assertEq(fromArtifact, fromSource, "same deployer nonce, same address");
        vm.assertGt(code.length, 1000, "non-trivial code");
        vm.assertEq(_stripMetadata(fromArtifact.code), _stripMetadata(code), "OpenSeedChannels runtime code");
    }

    function test_committed_TestUSDC_matches_source() public {
        uint256 snap = vm.snapshotState();
        address fromSource = address(new TestUSDC());
        bytes memory code = fromSource.code;
        vm.revertToState(snap);
        address fromArtifact = _create(_artifactCreationCode("TestUSDC"));
        vm.assertEq(fromArtifact, fromSource, "same deployer nonce, same address");
        vm.assertGt(code.length, 1000, "non-trivial code");
        vm.assertEq(_stripMetadata(fromArtifact.code), _stripMetadata(code), "TestUSDC runtime code");
    }
}
